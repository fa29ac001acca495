#ifndef CKERNELS_QUANT_INTERNAL_H
#define CKERNELS_QUANT_INTERNAL_H
/*
 * Shared between quant.c (scalar code, dispatch, public entry points), quant_avx2.c and
 * quant_avx512.c. Not part of the public header: Swift sees only include/CKernels.h.
 *
 * Weight layouts (row-major [rows, cols], blocks along a row; see CKernels.h):
 *   Q8     int8 [rows, cols],        f16 scales [rows, cols/32]   w = q * s
 *   Q4     uint8 [rows, cols/2],     f16 scales [rows, cols/32]   w = (c - 8) * s, column 2j in
 *                                                                 the low nibble of byte j
 *   FP8    E4M3FN [rows, cols],      one f32 scale                w = e4m3(q) * scale
 *   NVFP4  uint8 [rows, cols/2],     E4M3 scales [rows, cols/16], f32 scale2
 *                                                                 w = e2m1(c) * (e4m3(s) * scale2)
 */
#include "CKernels.h"
#include <string.h>

/* NVFP4 nibble order, in this one place: 0 = column 2j in the LOW nibble of byte j (ModelOpt's
 * packing as read so far), 1 = column 2j in the HIGH nibble. Every NVFP4 path (scalar, AVX2,
 * AVX-512, int8) takes its order from here. Q4's order is ours and fixed (low nibble first). */
#define NVFP4_HIGH_NIBBLE_FIRST 0

enum qformat { QF_Q8, QF_Q4, QF_FP8, QF_NVFP4 };

/* A quantized matrix as the kernels see it. */
typedef struct {
    enum qformat format;
    const uint8_t *w;      /* quantized bytes, row-major */
    const void *scales;    /* f16 (Q8, Q4) or E4M3 (NVFP4) block scales; NULL for FP8 */
    float scale;           /* FP8: the per-tensor scale; NVFP4: scale2; otherwise unused */
    size_t cols;
} qmat;

static inline size_t qmat_row_bytes(const qmat *m) {
    return (m->format == QF_Q8 || m->format == QF_FP8) ? m->cols : m->cols / 2;
}

/* ---- activation package (ck_q8_quantize_activation) ----------------------------------------
 * One token's activations quantized per block of 32 columns, x[k] ~ d[k/32] * q[k]. Sections,
 * each starting on a 64-byte boundary from the package start:
 *   int8  q[cols]        natural column order (Q8 weights)
 *   int8  p[cols]        nibble order: per chunk of n = min(128, cols - c0) columns starting at a
 *                        multiple c0 of 128, the n/2 even columns then the n/2 odd ones. A 4-bit
 *                        weight byte j holds columns 2j and 2j+1, so the low nibbles of 64 bytes
 *                        pair with 64 consecutive bytes of p, and so do the high nibbles.
 *   float d[cols/32]     block scales, amax / 127
 *   int32 h[cols/4]      -128 * sum of q over columns 4i..4i+3
 *   int32 g[cols/8]      -8 * sum of q over columns 8i..8i+7
 *   int32 g2[cols/8]     -16 * the same sums
 * vpdpbusd needs one unsigned operand, so the weights are made unsigned by a bias (Q8: w + 128,
 * Q4: the code w + 8, NVFP4: 2*e2m1 + 16) and the dot products start from -bias * sum(q) over
 * the columns of each int32 lane: h, g and g2 are those starting values, one per lane. */
typedef struct {
    const int8_t *q, *p;
    const float *d;
    const int32_t *h, *g, *g2;
} qact;

static inline size_t qa_align(size_t n) { return (n + 63) & ~(size_t)63; }

/* Offsets of the sections after q: p, d, h, g, g2, and the end. */
static inline void qa_offsets(size_t cols, size_t off[6]) {
    off[0] = qa_align(cols);
    off[1] = off[0] + qa_align(cols);
    off[2] = off[1] + qa_align(cols / 32 * 4);
    off[3] = off[2] + qa_align(cols / 4 * 4);
    off[4] = off[3] + qa_align(cols / 8 * 4);
    off[5] = off[4] + qa_align(cols / 8 * 4);
}

static inline size_t qa_bytes(size_t cols) {
    size_t off[6];
    qa_offsets(cols, off);
    return off[5];
}

static inline qact qa_view(const void *base, size_t cols) {
    const uint8_t *b = (const uint8_t *)base;
    size_t off[6];
    qa_offsets(cols, off);
    qact a = {(const int8_t *)b,           (const int8_t *)(b + off[0]),  (const float *)(b + off[1]),
              (const int32_t *)(b + off[2]), (const int32_t *)(b + off[3]), (const int32_t *)(b + off[4])};
    return a;
}

/* ---- scalar conversions (exact) ------------------------------------------------------------ */

static inline float q_bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint32_t q_float_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return bits;
}

static inline float q_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) return q_bits_to_float(sign | q_float_to_bits((float)man * 0x1p-24f));
    if (exp == 31) return q_bits_to_float(sign | 0x7f800000 | (man << 13));
    return q_bits_to_float(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

/* E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities; S.1111.111 is NaN.
 * Normal: (1 + m/8) * 2^(e-7); subnormal (e = 0): m * 2^-9. */
static inline float q_e4m3_to_float(uint8_t b) {
    uint32_t sign = (uint32_t)(b & 0x80) << 24, e = (b >> 3) & 0xf, m = b & 7;
    if (e == 15 && m == 7) return q_bits_to_float(sign | 0x7fc00000);
    if (e == 0) return q_bits_to_float(sign | q_float_to_bits((float)m * 0x1p-9f));
    return q_bits_to_float(sign | ((e + 127 - 7) << 23) | (m << 20));
}

/* E2M1 by code: bit 3 is the sign, magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}. */
static const float q_e2m1_values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                        -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* Round to nearest even bfloat16, NaN kept quiet (as ck_f32_to_bf16). */
static inline uint16_t q_float_to_bf16(float f) {
    uint32_t bits = q_float_to_bits(f);
    if ((bits & 0x7f800000) == 0x7f800000 && (bits & 0x7fffff)) return (uint16_t)((bits >> 16) | 0x40);
    return (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

/* The dequantized weight (r, k), with srow the row's block scales. */
static inline float q_weight_scalar(const qmat *m, const uint8_t *row, const uint8_t *srow, size_t k) {
    switch (m->format) {
    case QF_Q8: return (float)(int8_t)row[k] * q_half_to_float(((const uint16_t *)srow)[k / 32]);
    case QF_Q4: {
        int c = (row[k / 2] >> (4 * (k & 1))) & 0xf;
        return (float)(c - 8) * q_half_to_float(((const uint16_t *)srow)[k / 32]);
    }
    case QF_FP8: return q_e4m3_to_float(row[k]) * m->scale;
    case QF_NVFP4: {
        int c = (row[k / 2] >> (4 * ((k & 1) ^ NVFP4_HIGH_NIBBLE_FIRST))) & 0xf;
        return q_e2m1_values[c] * (q_e4m3_to_float(srow[k / 16]) * m->scale);
    }
    }
    return 0;
}

static inline const uint8_t *q_scale_row(const qmat *m, size_t r) {
    switch (m->format) {
    case QF_Q8:
    case QF_Q4: return (const uint8_t *)m->scales + r * (m->cols / 32) * 2;
    case QF_NVFP4: return (const uint8_t *)m->scales + r * (m->cols / 16);
    default: return NULL;
    }
}

/* ---- per-ISA implementations ----------------------------------------------------------------
 * All take rows [r0, r1); y[t*ldy + r]; tokens t < ntok. out rows are (r - r0) * cols. */

void q_gemv_f32_scalar(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok,
                       float *y, size_t ldy);
void q_dequant_scalar(const qmat *m, size_t r0, size_t r1, float *out);
void q_dequant_bf16_scalar(const qmat *m, size_t r0, size_t r1, uint16_t *out);
void q_quantize_act_scalar(const float *x, size_t cols, void *xq);
/* Fills the nibble-order copy p and the sums g from q (the scalar quantizer's second half). */
void q_quantize_act_tail(void *xq, size_t cols);
void q_gemv_int_scalar(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok,
                       float *y, size_t ldy);

void q_gemv_f32_avx2(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok,
                     float *y, size_t ldy);
void q_dequant_avx2(const qmat *m, size_t r0, size_t r1, float *out);
void q_quantize_act_avx2(const float *x, size_t cols, void *xq);
void q_gemv_int_avx2(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok,
                     float *y, size_t ldy);

void q_gemv_f32_avx512(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok,
                       float *y, size_t ldy);
void q_dequant_avx512(const qmat *m, size_t r0, size_t r1, float *out);
void q_dequant_bf16_avx512(const qmat *m, size_t r0, size_t r1, uint16_t *out);
void q_quantize_act_avx512(const float *x, size_t cols, void *xq);
void q_gemv_int_vnni512(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok,
                        float *y, size_t ldy);

#endif

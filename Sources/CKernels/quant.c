/*
 * Kernels for quantized weights: the scalar reference code, the run-time choice of instruction
 * set, and the public entry points (declared in CKernels.h). The SIMD code is in quant_avx2.c
 * and quant_avx512.c; layouts are described in quant_internal.h.
 *
 * Two paths:
 * - exact (ck_gemv_<fmt>): each weight dequantized in f32 exactly as the format defines it,
 *   times the f32 activation, accumulated in f32. For tests, compute_dtype f32, and FP8.
 * - int8 activations (ck_gemv_<fmt>_q8): activations quantized per block of 32 like llama.cpp's
 *   Q8_0, integer dot products per block, then scaled. Decode is bound by the bytes of weights
 *   read; this path keeps the arithmetic per weight byte small enough to stream them at the
 *   memory's rate on one core, and fast enough for several tokens at once.
 */
#include "quant_internal.h"
#include <math.h>

/* ---- scalar reference code --------------------------------------------------------------- */

void q_gemv_f32_scalar(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok,
                       float *y, size_t ldy) {
    size_t rb = qmat_row_bytes(m);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = m->w + r * rb, *srow = q_scale_row(m, r);
        for (size_t t = 0; t < ntok; t++) {
            const float *xt = x + t * ldx;
            float acc = 0;
            for (size_t k = 0; k < m->cols; k++) acc += q_weight_scalar(m, row, srow, k) * xt[k];
            y[t * ldy + r] = acc;
        }
    }
}

void q_dequant_scalar(const qmat *m, size_t r0, size_t r1, float *out) {
    size_t rb = qmat_row_bytes(m);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = m->w + r * rb, *srow = q_scale_row(m, r);
        for (size_t k = 0; k < m->cols; k++) out[(r - r0) * m->cols + k] = q_weight_scalar(m, row, srow, k);
    }
}

void q_dequant_bf16_scalar(const qmat *m, size_t r0, size_t r1, uint16_t *out) {
    size_t rb = qmat_row_bytes(m);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = m->w + r * rb, *srow = q_scale_row(m, r);
        for (size_t k = 0; k < m->cols; k++)
            out[(r - r0) * m->cols + k] = q_float_to_bf16(q_weight_scalar(m, row, srow, k));
    }
}

/* Fills the nibble-order copy p and the sums h, g, g2 from q (shared by every ISA's quantizer). */
void q_quantize_act_tail(void *xq, size_t cols) {
    size_t off[6];
    qa_offsets(cols, off);
    uint8_t *b = (uint8_t *)xq;
    const int8_t *q = (const int8_t *)b;
    int8_t *p = (int8_t *)(b + off[0]);
    int32_t *h = (int32_t *)(b + off[2]), *g = (int32_t *)(b + off[3]), *g2 = (int32_t *)(b + off[4]);
    for (size_t c0 = 0; c0 < cols; c0 += 128) {
        size_t n = cols - c0 < 128 ? cols - c0 : 128;
        for (size_t j = 0; j < n / 2; j++) {
            p[c0 + j] = q[c0 + 2 * j];
            p[c0 + n / 2 + j] = q[c0 + 2 * j + 1];
        }
    }
    for (size_t i = 0; i < cols / 4; i++) h[i] = -128 * (q[4 * i] + q[4 * i + 1] + q[4 * i + 2] + q[4 * i + 3]);
    for (size_t i = 0; i < cols / 8; i++) {
        g[i] = (h[2 * i] + h[2 * i + 1]) / 16;
        g2[i] = 2 * g[i];
    }
}

void q_quantize_act_scalar(const float *x, size_t cols, void *xq) {
    size_t off[6];
    qa_offsets(cols, off);
    int8_t *q = (int8_t *)xq;
    float *d = (float *)((uint8_t *)xq + off[1]);
    for (size_t blk = 0; blk < cols / 32; blk++) {
        const float *xb = x + 32 * blk;
        float amax = 0;
        for (int e = 0; e < 32; e++) amax = fmaxf(amax, fabsf(xb[e]));
        float scale = amax / 127.0f, inv = scale > 0 ? 1.0f / scale : 0.0f;
        d[blk] = scale;
        for (int e = 0; e < 32; e++) q[32 * blk + e] = (int8_t)nearbyintf(xb[e] * inv);
    }
    q_quantize_act_tail(xq, cols);
}

/* Per block of 32 (Q8, Q4) or 16 (NVFP4, whose codes count double: 2*e2m1 is an integer):
 * the integer dot product with q, times the weight scale and d, summed in f32. */
void q_gemv_int_scalar(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok,
                       float *y, size_t ldy) {
    static const int e2m1_twice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    size_t rb = qmat_row_bytes(m), cols = m->cols;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = m->w + r * rb, *srow = q_scale_row(m, r);
        for (size_t t = 0; t < ntok; t++) {
            qact a = qa_view((const uint8_t *)xq + t * ldxq, cols);
            float acc = 0;
            if (m->format == QF_NVFP4) {
                float half2 = 0.5f * m->scale;
                for (size_t blk = 0; blk < cols / 16; blk++) {
                    int32_t s = 0;
                    for (size_t k = 16 * blk; k < 16 * blk + 16; k++) {
                        int c = (row[k / 2] >> (4 * ((k & 1) ^ NVFP4_HIGH_NIBBLE_FIRST))) & 0xf;
                        s += e2m1_twice[c] * a.q[k];
                    }
                    acc += (q_e4m3_to_float(srow[blk]) * half2) * a.d[blk / 2] * (float)s;
                }
            } else {
                const uint16_t *sw = (const uint16_t *)srow;
                for (size_t blk = 0; blk < cols / 32; blk++) {
                    int32_t s = 0;
                    for (size_t k = 32 * blk; k < 32 * blk + 32; k++) {
                        int wq = m->format == QF_Q8 ? (int8_t)row[k] : ((row[k / 2] >> (4 * (k & 1))) & 0xf) - 8;
                        s += wq * a.q[k];
                    }
                    acc += q_half_to_float(sw[blk]) * a.d[blk] * (float)s;
                }
            }
            y[t * ldy + r] = acc;
        }
    }
}

/* ---- instruction set: detected once, capped per thread ------------------------------------- */

/* Detected once; threads that race here compute and store the same value. */
static int detected_level(void) {
    static int cached = 0;
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level == 0) {
        __builtin_cpu_init();
        level = CK_QUANT_SCALAR;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = CK_QUANT_AVX2;
        if (level == CK_QUANT_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl"))
            level = CK_QUANT_AVX512;
        if (level == CK_QUANT_AVX512 && __builtin_cpu_supports("avx512vnni")) level = CK_QUANT_AVX512_VNNI;
        __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    }
    return level;
}

static _Thread_local int isa_cap = 0;

int ck_quant_isa_level(void) {
    int level = detected_level();
    return isa_cap > 0 && isa_cap < level ? isa_cap : level;
}

int ck_quant_set_isa_cap(int cap) {
    isa_cap = cap;
    return ck_quant_isa_level();
}

const char *ck_quant_isa(void) {
    switch (ck_quant_isa_level()) {
    case CK_QUANT_AVX512_VNNI: return "avx512vnni";
    case CK_QUANT_AVX512: return "avx512";
    case CK_QUANT_AVX2: return "avx2";
    default: return "scalar";
    }
}

/* ---- public entry points -------------------------------------------------------------------- */

static void gemv_f32(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok, float *y,
                     size_t ldy) {
    int level = ck_quant_isa_level();
    if (level >= CK_QUANT_AVX512) q_gemv_f32_avx512(m, r0, r1, x, ldx, ntok, y, ldy);
    else if (level >= CK_QUANT_AVX2) q_gemv_f32_avx2(m, r0, r1, x, ldx, ntok, y, ldy);
    else q_gemv_f32_scalar(m, r0, r1, x, ldx, ntok, y, ldy);
}

static void dequant(const qmat *m, size_t r0, size_t r1, float *out) {
    int level = ck_quant_isa_level();
    if (level >= CK_QUANT_AVX512) q_dequant_avx512(m, r0, r1, out);
    else if (level >= CK_QUANT_AVX2) q_dequant_avx2(m, r0, r1, out);
    else q_dequant_scalar(m, r0, r1, out);
}

static void dequant_bf16(const qmat *m, size_t r0, size_t r1, uint16_t *out) {
    if (ck_quant_isa_level() >= CK_QUANT_AVX512) q_dequant_bf16_avx512(m, r0, r1, out);
    else q_dequant_bf16_scalar(m, r0, r1, out);
}

static void gemv_int(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok, float *y,
                     size_t ldy) {
    int level = ck_quant_isa_level();
    if (level >= CK_QUANT_AVX512_VNNI) q_gemv_int_vnni512(m, r0, r1, xq, ldxq, ntok, y, ldy);
    else if (level >= CK_QUANT_AVX2) q_gemv_int_avx2(m, r0, r1, xq, ldxq, ntok, y, ldy);
    else q_gemv_int_scalar(m, r0, r1, xq, ldxq, ntok, y, ldy);
}

static qmat make(enum qformat f, const void *w, const void *scales, float scale, size_t cols) {
    qmat m = {f, (const uint8_t *)w, scales, scale, cols};
    return m;
}

void ck_gemv_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const float *x,
                size_t ldx, size_t ntok, float *y, size_t ldy) {
    qmat m = make(QF_Q8, w, scales_f16, 0, cols);
    gemv_f32(&m, r0, r1, x, ldx, ntok, y, ldy);
}

void ck_gemv_q4(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const float *x,
                size_t ldx, size_t ntok, float *y, size_t ldy) {
    qmat m = make(QF_Q4, w, scales_f16, 0, cols);
    gemv_f32(&m, r0, r1, x, ldx, ntok, y, ldy);
}

void ck_gemv_fp8(const uint8_t *w, float scale, size_t cols, size_t r0, size_t r1, const float *x, size_t ldx,
                 size_t ntok, float *y, size_t ldy) {
    qmat m = make(QF_FP8, w, NULL, scale, cols);
    gemv_f32(&m, r0, r1, x, ldx, ntok, y, ldy);
}

void ck_gemv_nvfp4(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols, size_t r0, size_t r1,
                   const float *x, size_t ldx, size_t ntok, float *y, size_t ldy) {
    qmat m = make(QF_NVFP4, w, scales_e4m3, scale2, cols);
    gemv_f32(&m, r0, r1, x, ldx, ntok, y, ldy);
}

void ck_dequant_rows_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                        float *out) {
    qmat m = make(QF_Q8, w, scales_f16, 0, cols);
    dequant(&m, r0, r1, out);
}

void ck_dequant_rows_q4(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                        float *out) {
    qmat m = make(QF_Q4, w, scales_f16, 0, cols);
    dequant(&m, r0, r1, out);
}

void ck_dequant_rows_fp8(const uint8_t *w, float scale, size_t cols, size_t r0, size_t r1, float *out) {
    qmat m = make(QF_FP8, w, NULL, scale, cols);
    dequant(&m, r0, r1, out);
}

void ck_dequant_rows_nvfp4(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols, size_t r0,
                           size_t r1, float *out) {
    qmat m = make(QF_NVFP4, w, scales_e4m3, scale2, cols);
    dequant(&m, r0, r1, out);
}

void ck_dequant_rows_q8_bf16(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                             uint16_t *out) {
    qmat m = make(QF_Q8, w, scales_f16, 0, cols);
    dequant_bf16(&m, r0, r1, out);
}

void ck_dequant_rows_q4_bf16(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                             uint16_t *out) {
    qmat m = make(QF_Q4, w, scales_f16, 0, cols);
    dequant_bf16(&m, r0, r1, out);
}

void ck_dequant_rows_fp8_bf16(const uint8_t *w, float scale, size_t cols, size_t r0, size_t r1, uint16_t *out) {
    qmat m = make(QF_FP8, w, NULL, scale, cols);
    dequant_bf16(&m, r0, r1, out);
}

void ck_dequant_rows_nvfp4_bf16(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols,
                                size_t r0, size_t r1, uint16_t *out) {
    qmat m = make(QF_NVFP4, w, scales_e4m3, scale2, cols);
    dequant_bf16(&m, r0, r1, out);
}

size_t ck_q8_activation_bytes(size_t cols) { return qa_bytes(cols); }

size_t ck_q8_activation_scales_offset(size_t cols) {
    size_t off[6];
    qa_offsets(cols, off);
    return off[1];
}

void ck_q8_quantize_activation(const float *x, size_t cols, void *xq) {
    int level = ck_quant_isa_level();
    if (level >= CK_QUANT_AVX512) q_quantize_act_avx512(x, cols, xq);
    else if (level >= CK_QUANT_AVX2) q_quantize_act_avx2(x, cols, xq);
    else q_quantize_act_scalar(x, cols, xq);
}

void ck_gemv_q8_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const void *xq,
                   size_t ldxq_bytes, size_t ntok, float *y, size_t ldy) {
    qmat m = make(QF_Q8, w, scales_f16, 0, cols);
    gemv_int(&m, r0, r1, xq, ldxq_bytes, ntok, y, ldy);
}

void ck_gemv_q4_q8(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const void *xq,
                   size_t ldxq_bytes, size_t ntok, float *y, size_t ldy) {
    qmat m = make(QF_Q4, w, scales_f16, 0, cols);
    gemv_int(&m, r0, r1, xq, ldxq_bytes, ntok, y, ldy);
}

void ck_gemv_nvfp4_q8(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols, size_t r0,
                      size_t r1, const void *xq, size_t ldxq_bytes, size_t ntok, float *y, size_t ldy) {
    qmat m = make(QF_NVFP4, w, scales_e4m3, scale2, cols);
    gemv_int(&m, r0, r1, xq, ldxq_bytes, ntok, y, ldy);
}

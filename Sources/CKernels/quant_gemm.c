/*
 * Prefill GEMM of int8 and int4 weights against int8 activations (AVX512-VNNI).
 *
 *   y[t*ldy + r] = sum over blocks b of 32 inputs:  ws[r,b] * d[t,b] * sum_{k in b} w[r,k] * q[t,k]
 *
 * ws: the weight's f16 block scale, d: the activation's block scale (amax / 127, as
 * ck_q8_quantize_activation), q: int8 activations. The integer dot of each block is exact
 * (vpdpbusd, int32), then converted and scaled in f32. Weight layouts as in quant_internal.h.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so the weights are made unsigned by a bias
 * (int8: w + 128; int4: the stored code c = w + 8) and each block's int32 sum starts from
 * -bias * sum(q) of the block, computed once per token when the activations are quantized.
 *
 * Shapes and data movement:
 * - activations (ck_q8_gemm_quantize): tiles of QG_TOK tokens; per tile and block of 32 inputs
 *   QG_ABLK bytes: q as [8 groups of 4 inputs][QG_TOK tokens][4 bytes], then d[QG_TOK] f32, then
 *   the starting values c[QG_TOK] int32. A tile's tokens past ntok are zero (they add nothing
 *   and are not stored). Made once per product, read by every panel.
 * - weights: each thread packs QG_ROWS = 32 rows at a time into its scratch (the panel): per
 *   block 8 groups of [32 rows][4 bytes] (the biased weights, int4 widened to bytes), then the
 *   32 rows' scales as f32. A 4-byte group of 16 rows is one zmm: vpdpbusd adds the 4 products
 *   of each row into its int32 lane. Packing costs ~1/QG_TOK of a token tile's work per token
 *   tile it serves (cols/4 dwords per row against ntok/QG_TOK tiles).
 * - micro-kernel: 32 rows x QG_TOK tokens; per block and group two weight loads and QG_TOK
 *   broadcasts feed 2 * QG_TOK vpdpbusd (each operand reused QG_TOK or 2 times); per block then
 *   per (16 rows, token) one convert, one multiply by d and one FMA with the weight scales into
 *   an f32 accumulator. Live: 2 * QG_TOK int32 sums and 2 * QG_TOK f32 accumulators (24 zmm), two
 *   weight registers and a broadcast.
 */
#include "quant_internal.h"
#include <immintrin.h>

#define VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

#define QG_ROWS 32
#define QG_TOK 6
/* Bytes per block of a token tile: q (32 * QG_TOK), d (4 * QG_TOK), c (4 * QG_TOK), padding. */
#define QG_ABLK 256
#define QG_Q_BYTES (32 * QG_TOK)
/* Bytes per block of a panel: 8 groups of 32 rows x 4 bytes, then 32 f32 scales. */
#define QG_PBLK (8 * QG_ROWS * 4 + QG_ROWS * 4)

size_t ck_q8_gemm_tile_tokens(void) { return QG_TOK; }

size_t ck_q8_gemm_act_bytes(size_t ntok, size_t cols) {
    return (ntok + QG_TOK - 1) / QG_TOK * (cols / 32) * QG_ABLK;
}

size_t ck_q8_gemm_scratch(size_t cols) { return (cols / 32) * QG_PBLK + 64; }

int ck_q8_gemm_available(void) { return ck_quant_isa_level() >= CK_QUANT_AVX512_VNNI; }

/* Tiles [tile0, tile1) of the activations: tokens t < ntok of x (ldx floats apart). Per block of
 * 32: d = amax / 127, q = nearest-even(x * (1/d)) as ck_q8_quantize_activation computes them. */
VNNI512 void ck_q8_gemm_quantize(const float *x, size_t ldx, size_t ntok, size_t cols, int bits, size_t tile0,
                                 size_t tile1, void *xq) {
    size_t nb = cols / 32;
    int32_t bias = bits == 4 ? 8 : 128;
    for (size_t tile = tile0; tile < tile1; tile++) {
        uint8_t *base = (uint8_t *)xq + tile * nb * QG_ABLK;
        for (size_t i = 0; i < QG_TOK; i++) {
            size_t t = tile * QG_TOK + i;
            for (size_t b = 0; b < nb; b++) {
                uint8_t *blk = base + b * QG_ABLK;
                float *d = (float *)(blk + QG_Q_BYTES);
                int32_t *c = (int32_t *)(blk + QG_Q_BYTES + 4 * QG_TOK);
                if (t >= ntok) {
                    for (int g = 0; g < 8; g++) memset(blk + g * 4 * QG_TOK + 4 * i, 0, 4);
                    d[i] = 0;
                    c[i] = 0;
                    continue;
                }
                const float *xb = x + t * ldx + 32 * b;
                __m512 lo = _mm512_loadu_ps(xb), hi = _mm512_loadu_ps(xb + 16);
                float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
                float scale = amax / 127.0f, inv = scale > 0 ? 1.0f / scale : 0.0f;
                __m512 vi = _mm512_set1_ps(inv);
                __m128i qlo = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(lo, vi)));
                __m128i qhi = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(hi, vi)));
                __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(qlo), qhi, 1);
                int32_t groups[8];
                _mm256_storeu_si256((__m256i *)groups, q);
                for (int g = 0; g < 8; g++) memcpy(blk + g * 4 * QG_TOK + 4 * i, &groups[g], 4);
                /* sum of q: bytes biased to unsigned, summed by vpsadbw in 4 lanes of 8 */
                __m256i biased = _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
                __m256i sad = _mm256_sad_epu8(biased, _mm256_setzero_si256());
                __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
                int32_t sum = (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
                d[i] = scale;
                c[i] = -bias * sum;
            }
        }
    }
}

/* Rows [r, r + n) (n <= 32; the rest zero with zero scales) packed as described above. */
static void pack_panel(int bits, const uint8_t *w, const uint16_t *scales, size_t cols, size_t r, size_t n,
                       uint8_t *panel) {
    size_t nb = cols / 32;
    for (size_t i = 0; i < QG_ROWS; i++) {
        /* rows past the matrix are never read (row stays that of the panel's first row) */
        size_t ri = i < n ? r + i : r;
        const uint8_t *row = w + ri * (bits == 4 ? cols / 2 : cols);
        const uint16_t *srow = scales + ri * nb;
        for (size_t b = 0; b < nb; b++) {
            uint8_t *pb = panel + b * QG_PBLK;
            float *ps = (float *)(pb + 8 * QG_ROWS * 4);
            for (size_t g = 0; g < 8; g++) {
                uint32_t v = 0;
                if (i < n) {
                    if (bits == 4) {
                        /* bytes 16b + 2g and +1 hold inputs 32b + 4g ... + 3, low nibble first */
                        uint32_t b0 = row[16 * b + 2 * g], b1 = row[16 * b + 2 * g + 1];
                        v = (b0 & 15) | (b0 >> 4) << 8 | (b1 & 15) << 16 | (b1 >> 4) << 24;
                    } else {
                        memcpy(&v, row + 32 * b + 4 * g, 4);
                        v ^= 0x80808080u;
                    }
                }
                memcpy(pb + (g * QG_ROWS + i) * 4, &v, 4);
            }
            ps[i] = i < n ? q_half_to_float(srow[b]) : 0.0f;
        }
    }
}

/* out: 32 rows x QG_TOK tokens of one panel against one token tile, over nb blocks. */
VNNI512 INLINE void micro(const uint8_t *panel, const uint8_t *act, size_t nb, __m512 acc[2][QG_TOK]) {
    for (int t = 0; t < QG_TOK; t++) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * QG_PBLK, *ab = act + b * QG_ABLK;
        const int32_t *c = (const int32_t *)(ab + QG_Q_BYTES + 4 * QG_TOK);
        const float *d = (const float *)(ab + QG_Q_BYTES);
        __m512i s0[QG_TOK], s1[QG_TOK];
        for (int t = 0; t < QG_TOK; t++) s0[t] = s1[t] = _mm512_set1_epi32(c[t]);
        for (int g = 0; g < 8; g++) {
            __m512i w0 = _mm512_load_si512(pb + g * 128), w1 = _mm512_load_si512(pb + g * 128 + 64);
            const int32_t *q = (const int32_t *)(ab + g * 4 * QG_TOK);
            for (int t = 0; t < QG_TOK; t++) {
                __m512i x = _mm512_set1_epi32(q[t]);
                s0[t] = _mm512_dpbusd_epi32(s0[t], w0, x);
                s1[t] = _mm512_dpbusd_epi32(s1[t], w1, x);
            }
        }
        __m512 ws0 = _mm512_load_ps(pb + 1024), ws1 = _mm512_load_ps(pb + 1088);
        for (int t = 0; t < QG_TOK; t++) {
            __m512 dt = _mm512_set1_ps(d[t]);
            acc[0][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s0[t]), dt), ws0, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s1[t]), dt), ws1, acc[1][t]);
        }
    }
}

VNNI512 static void gemm(int bits, const uint8_t *w, const uint16_t *scales, size_t cols, size_t r0, size_t r1,
                         const void *xq, size_t ntok, float *y, size_t ldy, void *scratch) {
    size_t nb = cols / 32, tiles = (ntok + QG_TOK - 1) / QG_TOK;
    uint8_t *panel = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    for (size_t r = r0; r < r1; r += QG_ROWS) {
        size_t n = r1 - r < QG_ROWS ? r1 - r : QG_ROWS;
        pack_panel(bits, w, scales, cols, r, n, panel);
        __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
        for (size_t tile = 0; tile < tiles; tile++) {
            __m512 acc[2][QG_TOK];
            micro(panel, (const uint8_t *)xq + tile * nb * QG_ABLK, nb, acc);
            size_t t0 = tile * QG_TOK, m = ntok - t0 < QG_TOK ? ntok - t0 : QG_TOK;
            for (size_t t = 0; t < m; t++) {
                float *out = y + (t0 + t) * ldy + r;
                _mm512_mask_storeu_ps(out, m0, acc[0][t]);
                _mm512_mask_storeu_ps(out + 16, m1, acc[1][t]);
            }
        }
    }
}

void ck_gemm_q8_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const void *xq,
                   size_t ntok, float *y, size_t ldy, void *scratch) {
    gemm(8, (const uint8_t *)w, scales_f16, cols, r0, r1, xq, ntok, y, ldy, scratch);
}

void ck_gemm_q4_q8(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const void *xq,
                   size_t ntok, float *y, size_t ldy, void *scratch) {
    gemm(4, w, scales_f16, cols, r0, r1, xq, ntok, y, ldy, scratch);
}

/*
 * AVX-512 kernels for quantized weights (layouts in quant_internal.h).
 *
 * Exact path: 32 columns of one row are dequantized into two zmm registers and multiplied with
 * up to 4 tokens' f32 activations (64 columns per step, 4 accumulators per token, so one token
 * is not bound by the FMA latency chain).
 *
 * int8 path (AVX512-VNNI): vpdpbusd multiplies unsigned by signed bytes and adds groups of 4
 * into int32 lanes. Each lane's 4 (Q8) or 8 (Q4, NVFP4) products belong to one block, so a
 * 64-byte step yields 16 lanes that are converted to f32 and multiplied with the lane's block
 * scale (weight scale * activation scale, permuted from 16 per-block products) into one f32
 * accumulator per token. Unsigned operands:
 *   Q8     |w| against q with w's sign (llama.cpp's sign trick, with an AVX-512 mask for the sign);
 *   Q4     the code c = w + 8 against q, the lane starting at -8 * sum(q) from the package;
 *   NVFP4  2*e2m1 + 16 (in [4, 28], one vpshufb) against q, starting at -16 * sum(q).
 */
#include "quant_internal.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* Tokens per pass over a row, and rows per group: with more than TT tokens every row of a group
 * is read once per TT tokens, and a group (16 rows of at most a few KiB) stays in L2 between. */
#define TT 4
#define ROW_GROUP 16

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- dequantizing 32 columns ----------------------------------------------------------------- */

typedef struct {
    __m512 lo, hi; /* columns k..k+15 and k+16..k+31 */
} w32;

typedef struct {
    const uint8_t *w; /* the row's bytes */
    const uint8_t *s; /* the row's block scales */
    float scale;      /* FP8: scale * 256 (see deq_fp8); NVFP4: scale2 */
} rowp;

INLINE rowp row_of(const qmat *m, size_t r) {
    rowp p = {m->w + r * qmat_row_bytes(m), q_scale_row(m, r), m->format == QF_FP8 ? m->scale * 256.0f : m->scale};
    return p;
}

AVX512 INLINE __m512 widen_i8(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

AVX512 INLINE w32 deq_q8(rowp p, size_t k) {
    __m512 s = _mm512_set1_ps(_cvtsh_ss(((const uint16_t *)p.s)[k / 32]));
    w32 r = {_mm512_mul_ps(widen_i8(_mm_loadu_si128((const __m128i *)(p.w + k))), s),
             _mm512_mul_ps(widen_i8(_mm_loadu_si128((const __m128i *)(p.w + k + 16))), s)};
    return r;
}

/* 16 bytes hold columns k..k+31: byte j has column 2j low, 2j+1 high; unpacking the low and high
 * nibbles byte by byte restores column order. */
AVX512 INLINE w32 deq_q4(rowp p, size_t k) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p.w + k / 2)), nib = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    __m128i lo = _mm_and_si128(v, nib), hi = _mm_and_si128(_mm_srli_epi16(v, 4), nib);
    __m512 s = _mm512_set1_ps(_cvtsh_ss(((const uint16_t *)p.s)[k / 32]));
    w32 r = {_mm512_mul_ps(widen_i8(_mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), eight)), s),
             _mm512_mul_ps(widen_i8(_mm_sub_epi8(_mm_unpackhi_epi8(lo, hi), eight)), s)};
    return r;
}

/* E4M3 bytes (sign-extended to 16 bits) -> the half-precision bits of e4m3 / 256: sign to bit
 * 15, exponent and mantissa to bits 13..7. Half has 5 exponent bits with bias 15, so the value
 * is 2^(e-15) * (1 + m/8), and subnormal E4M3 lands on subnormal halves, which vcvtph2ps widens
 * exactly; NaN codes (S.1111.111) become 480 and are patched by the caller. */
AVX512 INLINE __m512i e4m3_to_half_bits(__m512i sign_extended) {
    return _mm512_and_si512(_mm512_slli_epi16(sign_extended, 7), _mm512_set1_epi16((short)0xbf80));
}

AVX512 INLINE __mmask32 e4m3_nan_32(__m256i b) {
    __m256i m = _mm256_set1_epi8(0x7f);
    return _mm256_cmpeq_epi8_mask(_mm256_and_si256(b, m), m);
}

/* n <= 32 valid columns, the rest zero. */
AVX512 INLINE w32 deq_fp8(rowp p, size_t k, size_t n) {
    __m256i b = n == 32 ? _mm256_loadu_si256((const __m256i *)(p.w + k))
                        : _mm256_maskz_loadu_epi8((__mmask32)((1ull << n) - 1), p.w + k);
    __m512i h = e4m3_to_half_bits(_mm512_cvtepi8_epi16(b));
    __m512 s = _mm512_set1_ps(p.scale); /* scale * 256: exact, so w = e4m3 * scale rounded once */
    w32 r = {_mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), s),
             _mm512_mul_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), s)};
    __mmask32 nan = e4m3_nan_32(b);
    if (__builtin_expect(nan != 0, 0)) {
        __m512 qnan = _mm512_set1_ps(__builtin_nanf(""));
        r.lo = _mm512_mask_mov_ps(r.lo, (__mmask16)nan, qnan);
        r.hi = _mm512_mask_mov_ps(r.hi, (__mmask16)(nan >> 16), qnan);
    }
    return r;
}

/* n = 16 or 32 valid columns (two blocks of 16). vpermps picks the E2M1 value by the low 4 bits
 * of each lane, so the high nibble left in a lane does not need masking. */
AVX512 INLINE w32 deq_nvfp4(rowp p, size_t k, size_t n) {
    __m128i v = n == 32 ? _mm_loadu_si128((const __m128i *)(p.w + k / 2)) : _mm_loadl_epi64((const __m128i *)(p.w + k / 2));
    __m128i hi = _mm_srli_epi16(v, 4);
#if NVFP4_HIGH_NIBBLE_FIRST
    __m128i ev = hi, od = v;
#else
    __m128i ev = v, od = hi;
#endif
    __m512 lut = _mm512_loadu_ps(q_e2m1_values);
    float s0 = q_e4m3_to_float(p.s[k / 16]) * p.scale;
    float s1 = n == 32 ? q_e4m3_to_float(p.s[k / 16 + 1]) * p.scale : 0.0f;
    w32 r = {_mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(ev, od)), lut), _mm512_set1_ps(s0)),
             _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(ev, od)), lut), _mm512_set1_ps(s1))};
    return r;
}

/* Columns k..k+n-1 (n <= 32; n < 32 only at the end of an FP8 or NVFP4 row). */
AVX512 INLINE w32 deq(enum qformat f, rowp p, size_t k, size_t n) {
    switch (f) {
    case QF_Q8: return deq_q8(p, k);
    case QF_Q4: return deq_q4(p, k);
    case QF_FP8: return deq_fp8(p, k, n);
    default: return deq_nvfp4(p, k, n);
    }
}

/* ---- exact path ------------------------------------------------------------------------------ */

/* out[t] = row . x_t for t < tt (tt <= TT, a constant after inlining). */
AVX512 INLINE void f32_tile(enum qformat f, rowp p, size_t cols, const float *x, size_t ldx, int tt, float *out) {
    __m512 acc[TT][4];
    for (int t = 0; t < TT; t++)
        for (int i = 0; i < 4; i++) acc[t][i] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 64 <= cols; k += 64) {
        w32 a = deq(f, p, k, 32), b = deq(f, p, k + 32, 32);
        for (int t = 0; t < tt; t++) {
            const float *xt = x + t * ldx + k;
            acc[t][0] = _mm512_fmadd_ps(a.lo, _mm512_loadu_ps(xt), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(a.hi, _mm512_loadu_ps(xt + 16), acc[t][1]);
            acc[t][2] = _mm512_fmadd_ps(b.lo, _mm512_loadu_ps(xt + 32), acc[t][2]);
            acc[t][3] = _mm512_fmadd_ps(b.hi, _mm512_loadu_ps(xt + 48), acc[t][3]);
        }
    }
    for (; k < cols; k += 32) {
        size_t n = min_size(32, cols - k);
        __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
        w32 a = deq(f, p, k, n);
        for (int t = 0; t < tt; t++) {
            const float *xt = x + t * ldx + k;
            acc[t][0] = _mm512_fmadd_ps(a.lo, _mm512_maskz_loadu_ps(m0, xt), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(a.hi, _mm512_maskz_loadu_ps(m1, xt + 16), acc[t][1]);
        }
    }
    for (int t = 0; t < tt; t++)
        out[t] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
}

AVX512 INLINE void f32_rows(enum qformat f, const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx,
                            size_t ntok, float *y, size_t ldy) {
    for (size_t rg = r0; rg < r1; rg += ROW_GROUP) {
        size_t re = min_size(r1, rg + ROW_GROUP);
        for (size_t t0 = 0; t0 < ntok; t0 += TT) {
            int tt = (int)min_size(TT, ntok - t0);
            const float *xt = x + t0 * ldx;
            for (size_t r = rg; r < re; r++) {
                rowp p = row_of(m, r);
                float out[TT];
                switch (tt) {
                case 1: f32_tile(f, p, m->cols, xt, ldx, 1, out); break;
                case 2: f32_tile(f, p, m->cols, xt, ldx, 2, out); break;
                case 3: f32_tile(f, p, m->cols, xt, ldx, 3, out); break;
                default: f32_tile(f, p, m->cols, xt, ldx, 4, out); break;
                }
                for (int t = 0; t < tt; t++) y[(t0 + t) * ldy + r] = out[t];
            }
        }
    }
}

AVX512 static void f32_q8(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok, float *y,
                          size_t ldy) {
    f32_rows(QF_Q8, m, r0, r1, x, ldx, ntok, y, ldy);
}
AVX512 static void f32_q4(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok, float *y,
                          size_t ldy) {
    f32_rows(QF_Q4, m, r0, r1, x, ldx, ntok, y, ldy);
}
AVX512 static void f32_fp8(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok, float *y,
                           size_t ldy) {
    f32_rows(QF_FP8, m, r0, r1, x, ldx, ntok, y, ldy);
}
AVX512 static void f32_nvfp4(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok,
                             float *y, size_t ldy) {
    f32_rows(QF_NVFP4, m, r0, r1, x, ldx, ntok, y, ldy);
}

void q_gemv_f32_avx512(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok, float *y,
                       size_t ldy) {
    switch (m->format) {
    case QF_Q8: f32_q8(m, r0, r1, x, ldx, ntok, y, ldy); break;
    case QF_Q4: f32_q4(m, r0, r1, x, ldx, ntok, y, ldy); break;
    case QF_FP8: f32_fp8(m, r0, r1, x, ldx, ntok, y, ldy); break;
    case QF_NVFP4: f32_nvfp4(m, r0, r1, x, ldx, ntok, y, ldy); break;
    }
}

/* ---- dequantizing rows ----------------------------------------------------------------------- */

/* f32 -> bf16 bits, nearest even, NaN kept quiet: the same bits as ck_f32_to_bf16. */
AVX512 INLINE __m256i to_bf16(__m512 v) {
    __m512i b = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i h = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    h = _mm512_mask_mov_epi32(h, nan, _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(h);
}

AVX512 INLINE void dequant_rows(enum qformat f, const qmat *m, size_t r0, size_t r1, float *out, uint16_t *out16) {
    size_t cols = m->cols;
    for (size_t r = r0; r < r1; r++) {
        rowp p = row_of(m, r);
        for (size_t k = 0; k < cols; k += 32) {
            size_t n = min_size(32, cols - k);
            w32 a = deq(f, p, k, n);
            __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
            __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
            if (out) {
                float *o = out + (r - r0) * cols + k;
                _mm512_mask_storeu_ps(o, m0, a.lo);
                _mm512_mask_storeu_ps(o + 16, m1, a.hi);
            } else {
                uint16_t *o = out16 + (r - r0) * cols + k;
                _mm256_mask_storeu_epi16(o, m0, to_bf16(a.lo));
                _mm256_mask_storeu_epi16(o + 16, m1, to_bf16(a.hi));
            }
        }
    }
}

AVX512 void q_dequant_avx512(const qmat *m, size_t r0, size_t r1, float *out) {
    switch (m->format) {
    case QF_Q8: dequant_rows(QF_Q8, m, r0, r1, out, NULL); break;
    case QF_Q4: dequant_rows(QF_Q4, m, r0, r1, out, NULL); break;
    case QF_FP8: dequant_rows(QF_FP8, m, r0, r1, out, NULL); break;
    case QF_NVFP4: dequant_rows(QF_NVFP4, m, r0, r1, out, NULL); break;
    }
}

AVX512 void q_dequant_bf16_avx512(const qmat *m, size_t r0, size_t r1, uint16_t *out) {
    switch (m->format) {
    case QF_Q8: dequant_rows(QF_Q8, m, r0, r1, NULL, out); break;
    case QF_Q4: dequant_rows(QF_Q4, m, r0, r1, NULL, out); break;
    case QF_FP8: dequant_rows(QF_FP8, m, r0, r1, NULL, out); break;
    case QF_NVFP4: dequant_rows(QF_NVFP4, m, r0, r1, NULL, out); break;
    }
}

/* ---- quantizing activations ------------------------------------------------------------------ */

/* Per block of 32: d = amax / 127, q = nearest-even(x * (1/d)) (vcvtps2dq under the default
 * rounding mode; the scalar code uses nearbyintf), then the block's nibble-order halves (even
 * bytes by truncating words, odd bytes by shifting them down first) and its four 8-column sums
 * (vpsadbw on q + 128 gives sum(q) + 1024 per 8 bytes). */
AVX512 void q_quantize_act_avx512(const float *x, size_t cols, void *xq) {
    uint8_t *base = (uint8_t *)xq;
    int8_t *q = (int8_t *)base, *pk = (int8_t *)(base + qa_align(cols));
    float *d = (float *)(base + 2 * qa_align(cols));
    int32_t *g = (int32_t *)(base + 2 * qa_align(cols) + qa_align(cols / 32 * 4));
    for (size_t blk = 0; blk < cols / 32; blk++) {
        __m512 a = _mm512_loadu_ps(x + 32 * blk), b = _mm512_loadu_ps(x + 32 * blk + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
        float scale = amax / 127.0f, inv = scale > 0 ? 1.0f / scale : 0.0f;
        d[blk] = scale;
        __m512 vi = _mm512_set1_ps(inv);
        __m128i qa = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a, vi)));
        __m128i qb = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(b, vi)));
        __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(qa), qb, 1);
        _mm256_storeu_si256((__m256i *)(q + 32 * blk), v);
        /* nibble order: the chunk of 128 (or the tail n) holding this block */
        size_t c0 = 32 * blk & ~(size_t)127, n = min_size(128, cols - c0), i = (32 * blk - c0) / 32;
        _mm_storeu_si128((__m128i *)(pk + c0 + 16 * i), _mm256_cvtepi16_epi8(v));
        _mm_storeu_si128((__m128i *)(pk + c0 + n / 2 + 16 * i), _mm256_cvtepi16_epi8(_mm256_srai_epi16(v, 8)));
        __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
        __m128i sums = _mm256_cvtepi64_epi32(sad); /* sum(q) + 1024 per 8 columns */
        _mm_storeu_si128((__m128i *)(g + 4 * blk), _mm_sub_epi32(_mm_set1_epi32(8192), _mm_slli_epi32(sums, 3)));
    }
}

/* ---- int8 path (AVX512-VNNI) ----------------------------------------------------------------- */

/* Lane l of a step's int32 result belongs to block base + l / per, per = lanes per block. */
VNNI512 INLINE __m512i lane_blocks(int base, int per) {
    return _mm512_add_epi32(_mm512_set1_epi32(base),
                            _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              per == 8 ? 3 : per == 4 ? 2 : 1));
}

INLINE __mmask16 mask16(size_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }
INLINE __mmask64 mask64(size_t n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }

/* Q8 x Q8, one row: 512 columns (16 blocks) per group, 64 per step (two blocks, 8 lanes each). */
VNNI512 INLINE void q8_tile(const int8_t *row, const uint16_t *sw, size_t cols, const qact *a, int tt, float *out) {
    size_t nb = cols / 32;
    __m512 acc[TT][2];
    for (int t = 0; t < TT; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b += 16) {
        size_t nblk = min_size(16, nb - b);
        __mmask16 km = mask16(nblk);
        __m512 s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, sw + b));
        __m512 c[TT];
        for (int t = 0; t < tt; t++) c[t] = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(km, a[t].d + b));
        for (size_t j = 0; 2 * j < nblk; j++) {
            __mmask64 lm = mask64(32 * (nblk - 2 * j));
            __m512i v = _mm512_maskz_loadu_epi8(lm, row + 32 * b + 64 * j);
            __m512i av = _mm512_abs_epi8(v);
            __mmask64 neg = _mm512_movepi8_mask(v);
            __m512i idx = lane_blocks((int)(2 * j), 8);
            for (int t = 0; t < tt; t++) {
                __m512i xv = _mm512_maskz_loadu_epi8(lm, a[t].q + 32 * b + 64 * j);
                xv = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), av, xv);
                acc[t][j & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, c[t]), acc[t][j & 1]);
            }
        }
    }
    for (int t = 0; t < tt; t++) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]));
}

/* Q4 x Q8, one row: 512 columns per group, 128 per step (64 weight bytes, four blocks). The low
 * nibbles pair with the step's 64 even columns of p and the high ones with the 64 odd; lane l
 * then holds columns 8l..8l+7, block l / 4. */
VNNI512 INLINE void q4_tile(const uint8_t *row, const uint16_t *sw, size_t cols, const qact *a, int tt, float *out) {
    size_t nb = cols / 32;
    __m512i nib = _mm512_set1_epi8(0x0f);
    __m512 acc[TT][2];
    for (int t = 0; t < TT; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (size_t b = 0; b < nb; b += 16) {
        size_t nblk = min_size(16, nb - b);
        __mmask16 km = mask16(nblk);
        __m512 s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, sw + b));
        __m512 c[TT];
        for (int t = 0; t < tt; t++) c[t] = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(km, a[t].d + b));
        for (size_t j = 0; 4 * j < nblk; j++) {
            size_t half = 16 * min_size(4, nblk - 4 * j); /* weight bytes = even (= odd) columns */
            __mmask64 lm = mask64(half);
            __m512i v = _mm512_maskz_loadu_epi8(lm, row + 16 * b + 64 * j);
            __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
            __m512i idx = lane_blocks((int)(4 * j), 4);
            __mmask16 gm = mask16(half / 4);
            for (int t = 0; t < tt; t++) {
                const int8_t *pc = a[t].p + 32 * (b + 4 * j);
                __m512i p = _mm512_maskz_loadu_epi32(gm, a[t].g + 4 * (b + 4 * j));
                p = _mm512_dpbusd_epi32(p, lo, _mm512_maskz_loadu_epi8(lm, pc));
                p = _mm512_dpbusd_epi32(p, hi, _mm512_maskz_loadu_epi8(lm, pc + half));
                acc[t][j & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, c[t]), acc[t][j & 1]);
            }
        }
    }
    for (int t = 0; t < tt; t++) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]));
}

/* 16 E4M3 scales -> f32 times `mul` (NaN codes to NaN). */
VNNI512 INLINE __m512 e4m3x16(__m128i b, float mul) {
    __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), _mm256_set1_epi16((short)0xbf80));
    __m512 f = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f * mul));
    __m128i m = _mm_set1_epi8(0x7f);
    return _mm512_mask_mov_ps(f, _mm_cmpeq_epi8_mask(_mm_and_si128(b, m), m), _mm512_set1_ps(__builtin_nanf("")));
}

/* NVFP4 x Q8, one row: 256 columns (16 scales of 16, 8 activation blocks) per group, 128 per
 * step. Codes become 2*e2m1 + 16 through one vpshufb, and the lanes start at -16 * sum(q) (twice
 * the package's -8 * sum). Lane l holds columns 8l..8l+7: scale l / 2, activation block l / 4. */
VNNI512 INLINE void nvfp4_tile(const uint8_t *row, const uint8_t *sw, float scale2, size_t cols, const qact *a,
                               int tt, float *out) {
    size_t n16 = cols / 16;
    __m512i nib = _mm512_set1_epi8(0x0f);
    __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(16, 17, 18, 19, 20, 22, 24, 28, 16, 15, 14, 13, 12, 10, 8, 4));
    __m512i dup2 = lane_blocks(0, 2);
    __m512 acc[TT][2];
    for (int t = 0; t < TT; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (size_t g = 0; g < n16; g += 16) {
        size_t nblk = min_size(16, n16 - g);
        __m512 s = e4m3x16(_mm_maskz_loadu_epi8(mask16(nblk), sw + g), 0.5f * scale2);
        __m512 c[TT];
        for (int t = 0; t < tt; t++)
            c[t] = _mm512_mul_ps(s, _mm512_permutexvar_ps(dup2, _mm512_maskz_loadu_ps(mask16(nblk / 2), a[t].d + g / 2)));
        for (size_t j = 0; 8 * j < nblk; j++) {
            size_t half = 8 * min_size(8, nblk - 8 * j);
            __mmask64 lm = mask64(half);
            __m512i v = _mm512_maskz_loadu_epi8(lm, row + 8 * g + 64 * j);
            __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
#if NVFP4_HIGH_NIBBLE_FIRST
            __m512i ue = _mm512_shuffle_epi8(lut, hi), uo = _mm512_shuffle_epi8(lut, lo);
#else
            __m512i ue = _mm512_shuffle_epi8(lut, lo), uo = _mm512_shuffle_epi8(lut, hi);
#endif
            __m512i idx = lane_blocks((int)(8 * j), 2);
            __mmask16 gm = mask16(half / 4);
            for (int t = 0; t < tt; t++) {
                const int8_t *pc = a[t].p + 16 * (g + 8 * j);
                __m512i p = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(gm, a[t].g + 2 * (g + 8 * j)), 1);
                p = _mm512_dpbusd_epi32(p, ue, _mm512_maskz_loadu_epi8(lm, pc));
                p = _mm512_dpbusd_epi32(p, uo, _mm512_maskz_loadu_epi8(lm, pc + half));
                acc[t][j & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, c[t]), acc[t][j & 1]);
            }
        }
    }
    for (int t = 0; t < tt; t++) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]));
}

VNNI512 INLINE void int_tile(enum qformat f, const qmat *m, size_t r, const qact *a, int tt, float *out) {
    rowp p = row_of(m, r);
    switch (f) {
    case QF_Q8: q8_tile((const int8_t *)p.w, (const uint16_t *)p.s, m->cols, a, tt, out); break;
    case QF_Q4: q4_tile(p.w, (const uint16_t *)p.s, m->cols, a, tt, out); break;
    default: nvfp4_tile(p.w, p.s, m->scale, m->cols, a, tt, out); break;
    }
}

VNNI512 INLINE void int_rows(enum qformat f, const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq,
                             size_t ntok, float *y, size_t ldy) {
    for (size_t rg = r0; rg < r1; rg += ROW_GROUP) {
        size_t re = min_size(r1, rg + ROW_GROUP);
        for (size_t t0 = 0; t0 < ntok; t0 += TT) {
            int tt = (int)min_size(TT, ntok - t0);
            qact a[TT];
            for (int t = 0; t < tt; t++) a[t] = qa_view((const uint8_t *)xq + (t0 + t) * ldxq, m->cols);
            for (size_t r = rg; r < re; r++) {
                float out[TT];
                switch (tt) {
                case 1: int_tile(f, m, r, a, 1, out); break;
                case 2: int_tile(f, m, r, a, 2, out); break;
                case 3: int_tile(f, m, r, a, 3, out); break;
                default: int_tile(f, m, r, a, 4, out); break;
                }
                for (int t = 0; t < tt; t++) y[(t0 + t) * ldy + r] = out[t];
            }
        }
    }
}

VNNI512 static void int_q8(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok, float *y,
                           size_t ldy) {
    int_rows(QF_Q8, m, r0, r1, xq, ldxq, ntok, y, ldy);
}
VNNI512 static void int_q4(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok, float *y,
                           size_t ldy) {
    int_rows(QF_Q4, m, r0, r1, xq, ldxq, ntok, y, ldy);
}
VNNI512 static void int_nvfp4(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok,
                              float *y, size_t ldy) {
    int_rows(QF_NVFP4, m, r0, r1, xq, ldxq, ntok, y, ldy);
}

void q_gemv_int_vnni512(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok, float *y,
                        size_t ldy) {
    switch (m->format) {
    case QF_Q8: int_q8(m, r0, r1, xq, ldxq, ntok, y, ldy); break;
    case QF_Q4: int_q4(m, r0, r1, xq, ldxq, ntok, y, ldy); break;
    case QF_NVFP4: int_nvfp4(m, r0, r1, xq, ldxq, ntok, y, ldy); break;
    default: break;
    }
}

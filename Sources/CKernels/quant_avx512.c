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
 * accumulator per token. The weights are made unsigned by a bias and each lane starts from
 * -bias * sum(q) of its columns, precomputed in the activation package:
 *   Q8     w + 128 (one xor) against q, from h = -128 * sum(q);
 *   Q4     the code c = w + 8 against q in nibble order, from g = -8 * sum(q);
 *   NVFP4  2*e2m1 + 16 (in [4, 28], one vpshufb) against q in nibble order, from g2 = -16 * sum(q).
 * Per 64 weight bytes and token that is 1-2 vpdpbusd, a convert, a permute and an FMA, so one
 * core keeps up with the memory at 1-2 tokens; beyond that the kernels are bound by arithmetic.
 *
 * Measured on the 2-vCPU Zen 4 host (scripts/bench-quant-kernels.c): the int8 path streams at
 * 0.8-1.0 of the read-bandwidth probe for one token; see the comments below for what mattered
 * (plain rather than masked loads, software prefetch, accumulators kept in registers).
 */
#include "lanes.h"
#include "quant_internal.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* Tokens per pass over a row, and rows per group: with more than TT tokens every row of a group
 * is read once per TT tokens, and a group (16 rows of at most a few KiB) stays in L2 between;
 * the int8 path also walks a group 1024 columns at a time for more than two tokens (int_rows). */
#define TT 4
#define ROW_GROUP 16

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* One f16 scale widened into all lanes. Converting it as a scalar (_cvtsh_ss, or vmovd +
 * vcvtph2ps) compiled to vpinsrw into an arbitrary register, here an accumulator, so each
 * block's scale waited on the previous FMA; a broadcast load has no such input. */
AVX512 INLINE __m512 half_x16(const uint16_t *h) {
    return _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_set1_epi16((short)*h)));
}


/* Software prefetch of the weights this far ahead of the pointer being read (rows are
 * contiguous, so it runs on into the following rows). With the hardware prefetchers alone one
 * core streamed int8 weights at 26-30 GB/s where bf16 reached 36-39. Measured in thread CPU time
 * on the 2-vCPU Zen 4 host (1 token, 128 MiB of weights): none -> 4 KiB gained 15-18 %, 4 -> 8
 * KiB another 8-30 % (most for the 4-bit formats), 8 -> 12 or 16 KiB nothing. */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 8192
#endif
#define PREFETCH(p) _mm_prefetch((const char *)(p) + PREFETCH_AHEAD, _MM_HINT_T0)

/* ---- dequantizing 32 columns ----------------------------------------------------------------- */

typedef struct {
    __m512 lo, hi; /* columns k..k+15 and k+16..k+31 */
} w32;

typedef struct {
    const uint8_t *w; /* the row's bytes */
    const uint8_t *s; /* the row's block scales */
    float scale;      /* FP8: scale * 256 (deq_fp8 gives e4m3 / 256); NVFP4: scale2 */
} rowp;

INLINE rowp row_of(const qmat *m, size_t r) {
    rowp p = {m->w + r * qmat_row_bytes(m), q_scale_row(m, r), m->format == QF_FP8 ? m->scale * 256.0f : m->scale};
    return p;
}

AVX512 INLINE __m512 widen_i8(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

AVX512 INLINE w32 deq_q8(rowp p, size_t k) {
    __m512 s = half_x16((const uint16_t *)p.s + k / 32);
    w32 r = {_mm512_mul_ps(widen_i8(_mm_loadu_si128((const __m128i *)(p.w + k))), s),
             _mm512_mul_ps(widen_i8(_mm_loadu_si128((const __m128i *)(p.w + k + 16))), s)};
    return r;
}

/* 16 bytes hold columns k..k+31: byte j has column 2j low, 2j+1 high; unpacking the low and high
 * nibbles byte by byte restores column order. */
AVX512 INLINE w32 deq_q4(rowp p, size_t k) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p.w + k / 2)), nib = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    __m128i lo = _mm_and_si128(v, nib), hi = _mm_and_si128(_mm_srli_epi16(v, 4), nib);
    __m512 s = half_x16((const uint16_t *)p.s + k / 32);
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

/* FP8 columns k..k+n-1 (n <= 32, the rest zero) as e4m3 / 256, unscaled: the exact path
 * multiplies its sums by scale * 256 once per row (the per-tensor scale factored out of the
 * sum), the dequantizers multiply each weight (exact: a power of two, then one rounding). */
AVX512 INLINE w32 deq_fp8(rowp p, size_t k, size_t n) {
    __m256i b = n == 32 ? _mm256_loadu_si256((const __m256i *)(p.w + k))
                        : _mm256_maskz_loadu_epi8((__mmask32)((1ull << n) - 1), p.w + k);
    __m512i h = e4m3_to_half_bits(_mm512_cvtepi8_epi16(b));
    w32 r = {_mm512_cvtph_ps(_mm512_castsi512_si256(h)), _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1))};
    __mmask32 nan = e4m3_nan_32(b);
    if (__builtin_expect(nan != 0, 0)) {
        __m512 qnan = _mm512_set1_ps(__builtin_nanf(""));
        r.lo = _mm512_mask_mov_ps(r.lo, (__mmask16)nan, qnan);
        r.hi = _mm512_mask_mov_ps(r.hi, (__mmask16)(nan >> 16), qnan);
    }
    return r;
}

/* 64 FP8 columns with one NaN test (the exact path's whole steps). */
AVX512 INLINE void deq_fp8_64(rowp p, size_t k, w32 *a, w32 *b) {
    __m512i v = _mm512_loadu_si512(p.w + k), m = _mm512_set1_epi8(0x7f);
    __mmask64 nan = _mm512_cmpeq_epi8_mask(_mm512_and_si512(v, m), m);
    if (__builtin_expect(nan != 0, 0)) {
        *a = deq_fp8(p, k, 32);
        *b = deq_fp8(p, k + 32, 32);
        return;
    }
    __m512i h0 = e4m3_to_half_bits(_mm512_cvtepi8_epi16(_mm512_castsi512_si256(v)));
    __m512i h1 = e4m3_to_half_bits(_mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(v, 1)));
    a->lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h0));
    a->hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h0, 1));
    b->lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h1));
    b->hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h1, 1));
}

/* 16 E4M3 scales -> f32 times `mul` (NaN codes to NaN), through half precision as deq_fp8 (exact: e4m3 / 256, then times 256 * mul, one rounding). */
AVX512 INLINE __m512 e4m3x16(__m128i b, float mul) {
    __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), _mm256_set1_epi16((short)0xbf80));
    __m512 f = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f * mul));
    __m128i m = _mm_set1_epi8(0x7f);
    return _mm512_mask_mov_ps(f, _mm_cmpeq_epi8_mask(_mm_and_si128(b, m), m), _mm512_set1_ps(__builtin_nanf("")));
}

/* The NVFP4 block scales of columns [k, k + 256) (fewer at the row's end), decoded 16 at a time
 * and times scale2: per 32 columns one vpermps picks each block's from here, where decoding two
 * scales as scalars per 32 columns had cost more than the weights. */
AVX512 INLINE __m512 nvfp4_scales(rowp p, size_t k, size_t cols) {
    size_t n = min_size(16, (cols - k + 15) / 16);
    __m128i b = n == 16 ? _mm_loadu_si128((const __m128i *)(p.s + k / 16))
                        : _mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1), p.s + k / 16);
    return e4m3x16(b, p.scale);
}

/* n = 16 or 32 valid columns (two blocks of 16) at column k, with S = nvfp4_scales of the 256
 * columns holding them. vpermps picks the E2M1 value by the low 4 bits of each lane, so the high
 * nibble left in a lane does not need masking. */
AVX512 INLINE w32 deq_nvfp4(rowp p, size_t k, size_t n, __m512 S) {
    __m128i v = n == 32 ? _mm_loadu_si128((const __m128i *)(p.w + k / 2)) : _mm_loadl_epi64((const __m128i *)(p.w + k / 2));
    __m128i hi = _mm_srli_epi16(v, 4);
#if NVFP4_HIGH_NIBBLE_FIRST
    __m128i ev = hi, od = v;
#else
    __m128i ev = v, od = hi;
#endif
    __m512 lut = _mm512_loadu_ps(q_e2m1_values);
    int i = (int)(k % 256 / 16);
    __m512 s0 = _mm512_permutexvar_ps(_mm512_set1_epi32(i), S);
    __m512 s1 = n == 32 ? _mm512_permutexvar_ps(_mm512_set1_epi32(i + 1), S) : _mm512_setzero_ps();
    w32 r = {_mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(ev, od)), lut), s0),
             _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(ev, od)), lut), s1)};
    return r;
}

/* Columns k..k+n-1 (n <= 32; n < 32 only at the end of an FP8 or NVFP4 row). */
/* S: the NVFP4 scales of the 256 columns holding k (nvfp4_scales); unused otherwise. */
AVX512 INLINE w32 deq(enum qformat f, rowp p, size_t k, size_t n, __m512 S) {
    switch (f) {
    case QF_Q8: return deq_q8(p, k);
    case QF_Q4: return deq_q4(p, k);
    case QF_FP8: return deq_fp8(p, k, n);
    default: return deq_nvfp4(p, k, n, S);
    }
}

/* ---- exact path ------------------------------------------------------------------------------ */

/* out[t] = row . x_t for t < tt (tt <= TT, a constant after inlining). */
AVX512 INLINE void f32_tile(enum qformat f, rowp p, size_t cols, const float *x, size_t ldx, int tt, float *out) {
    __m512 acc[TT][4];
    for (int t = 0; t < TT; t++)
        for (int i = 0; i < 4; i++) acc[t][i] = _mm512_setzero_ps();
    size_t k = 0;
    __m512 S = _mm512_setzero_ps();
    for (; k + 64 <= cols; k += 64) {
        PREFETCH(p.w + (f == QF_Q8 || f == QF_FP8 ? k : k / 2));
        if (f == QF_NVFP4 && k % 256 == 0) S = nvfp4_scales(p, k, cols);
        w32 a, b;
        if (f == QF_FP8) {
            deq_fp8_64(p, k, &a, &b);
        } else {
            a = deq(f, p, k, 32, S);
            b = deq(f, p, k + 32, 32, S);
        }
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
        if (f == QF_NVFP4 && k % 256 == 0) S = nvfp4_scales(p, k, cols);
        w32 a = deq(f, p, k, n, S);
        for (int t = 0; t < tt; t++) {
            const float *xt = x + t * ldx + k;
            acc[t][0] = _mm512_fmadd_ps(a.lo, _mm512_maskz_loadu_ps(m0, xt), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(a.hi, _mm512_maskz_loadu_ps(m1, xt + 16), acc[t][1]);
        }
    }
    for (int t = 0; t < tt; t++) {
        out[t] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
        if (f == QF_FP8) out[t] *= p.scale;
    }
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
        __m512 S = _mm512_setzero_ps();
        for (size_t k = 0; k < cols; k += 32) {
            size_t n = min_size(32, cols - k);
            if (f == QF_NVFP4 && k % 256 == 0) S = nvfp4_scales(p, k, cols);
            w32 a = deq(f, p, k, n, S);
            if (f == QF_FP8) {
                a.lo = _mm512_mul_ps(a.lo, _mm512_set1_ps(p.scale));
                a.hi = _mm512_mul_ps(a.hi, _mm512_set1_ps(p.scale));
            }
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
 * rounding mode; the scalar code uses nearbyintf); then the block's nibble-order halves (even
 * bytes by truncating words, odd bytes by shifting them down first) and its sums: per 4
 * columns by vpmaddubsw/vpmaddwd against ones, per 8 by vpsadbw on q + 128 (sum + 1024). */
AVX512 void q_quantize_act_avx512(const float *x, size_t cols, void *xq) {
    size_t off[6];
    qa_offsets(cols, off);
    uint8_t *base = (uint8_t *)xq;
    int8_t *q = (int8_t *)base, *pk = (int8_t *)(base + off[0]);
    float *d = (float *)(base + off[1]);
    int32_t *h = (int32_t *)(base + off[2]), *g = (int32_t *)(base + off[3]), *g2 = (int32_t *)(base + off[4]);
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
        __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), v), _mm256_set1_epi16(1));
        _mm256_storeu_si256((__m256i *)(h + 8 * blk), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s4, 7)));
        __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
        __m128i s8 = _mm_sub_epi32(_mm256_cvtepi64_epi32(sad), _mm_set1_epi32(1024));
        _mm_storeu_si128((__m128i *)(g + 4 * blk), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s8, 3)));
        _mm_storeu_si128((__m128i *)(g2 + 4 * blk), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s8, 4)));
    }
}

/* ---- int8 path (AVX512-VNNI) ----------------------------------------------------------------- */

/* Lane l of a step's int32 result belongs to block base + l / per, per = lanes per block. */
VNNI512 INLINE __m512i lane_blocks(int base, int per) {
    return _mm512_add_epi32(_mm512_set1_epi32(base),
                            _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              per == 8 ? 3 : per == 4 ? 2 : 1));
}

INLINE __mmask64 mask64(size_t n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }

/* Masked loads only where a row ends inside a step: streams of masked loads ran the kernels at
 * a fifth of the speed on Zen 4/5 (out of cache), so full steps use plain loads. With the
 * group size a constant, the masks fold away. */
VNNI512 INLINE __m512i load_bytes(__mmask64 m, const void *p) {
    return m == ~(__mmask64)0 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(m, p);
}
VNNI512 INLINE __m512i load_i32(__mmask16 m, const void *p) {
    return m == 0xffff ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(m, p);
}
VNNI512 INLINE __m512 load_f32(__mmask16 m, const float *p) {
    return m == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

/* One accumulator per token. Indexing them by step parity (two chains per token) kept them in
 * memory: a variable index in the tail groups stopped the compiler from promoting the array to
 * registers, and every FMA went through a store and a reload. One chain per token is not bound
 * by the FMA latency: 4 cycles per 64 weight bytes is above the memory rate. */
typedef struct {
    __m512 v[TT];
} accs;

/* Q8 x Q8: a group of nblk (<= 16) blocks from block b, 64 columns (two blocks) per step. The
 * weights biased to w + 128 meet q, each lane starting from h = -128 * sum(q) of its 4 columns;
 * lane l belongs to block 2j + l / 8. */
VNNI512 INLINE void q8_group(const int8_t *row, const uint16_t *sw, size_t b, size_t nblk, const qact *a, int tt,
                             accs *acc) {
    __m512 s = _mm512_cvtph_ps(nblk == 16 ? _mm256_loadu_si256((const __m256i *)(sw + b))
                                          : _mm256_maskz_loadu_epi16(mask16(nblk), sw + b));
    __m512 c[TT];
    for (int t = 0; t < tt; t++) c[t] = _mm512_mul_ps(s, load_f32(mask16(nblk), a[t].d + b));
    for (size_t j = 0; 2 * j < nblk; j++) {
        __mmask64 lm = mask64(32 * (nblk - 2 * j));
        const int8_t *wp = row + 32 * b + 64 * j;
        PREFETCH(wp);
        __m512i u = _mm512_xor_si512(load_bytes(lm, wp), _mm512_set1_epi8((char)0x80));
        __m512i idx = lane_blocks((int)(2 * j), 8);
        for (int t = 0; t < tt; t++) {
            __m512i p = load_i32(mask16(8 * (nblk - 2 * j)), a[t].h + 8 * b + 16 * j);
            p = _mm512_dpbusd_epi32(p, u, load_bytes(lm, a[t].q + 32 * b + 64 * j));
            acc->v[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, c[t]), acc->v[t]);
        }
    }
}

/* Q4 x Q8: 128 columns (64 weight bytes, four blocks) per step. The low nibbles (codes w + 8)
 * pair with the step's 64 even columns of p and the high ones with the 64 odd; lane l then
 * holds columns 8l..8l+7 (block l / 4) and starts from g = -8 * their sum(q). */
VNNI512 INLINE void q4_group(const uint8_t *row, const uint16_t *sw, size_t b, size_t nblk, const qact *a, int tt,
                             accs *acc) {
    __m512i nib = _mm512_set1_epi8(0x0f);
    __m512 s = _mm512_cvtph_ps(nblk == 16 ? _mm256_loadu_si256((const __m256i *)(sw + b))
                                          : _mm256_maskz_loadu_epi16(mask16(nblk), sw + b));
    __m512 c[TT];
    for (int t = 0; t < tt; t++) c[t] = _mm512_mul_ps(s, load_f32(mask16(nblk), a[t].d + b));
    for (size_t j = 0; 4 * j < nblk; j++) {
        size_t half = 16 * min_size(4, nblk - 4 * j); /* weight bytes = even (= odd) columns */
        __mmask64 lm = mask64(half);
        const uint8_t *wp = row + 16 * b + 64 * j;
        PREFETCH(wp);
        __m512i v = load_bytes(lm, wp);
        __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        __m512i idx = lane_blocks((int)(4 * j), 4);
        for (int t = 0; t < tt; t++) {
            const int8_t *pc = a[t].p + 32 * (b + 4 * j);
            __m512i p = load_i32(mask16(half / 4), a[t].g + 4 * (b + 4 * j));
            p = _mm512_dpbusd_epi32(p, lo, load_bytes(lm, pc));
            p = _mm512_dpbusd_epi32(p, hi, load_bytes(lm, pc + half));
            acc->v[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, c[t]), acc->v[t]);
        }
    }
}

/* NVFP4 x Q8: a group of nblk (<= 16) scales of 16 columns from scale g (256 columns, 8
 * activation blocks), 128 columns per step. One vpshufb turns codes into 2*e2m1 + 16, in
 * [4, 28]; lanes start from g2 = -16 * sum(q). Lane l holds columns 8l..8l+7: scale l / 2 of
 * the step, activation block l / 4. */
VNNI512 INLINE void nvfp4_group(const uint8_t *row, const uint8_t *sw, float scale2, size_t g, size_t nblk,
                                const qact *a, int tt, accs *acc) {
    __m512i nib = _mm512_set1_epi8(0x0f);
    __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(16, 17, 18, 19, 20, 22, 24, 28, 16, 15, 14, 13, 12, 10, 8, 4));
    __m128i sb = nblk == 16 ? _mm_loadu_si128((const __m128i *)(sw + g)) : _mm_maskz_loadu_epi8(mask16(nblk), sw + g);
    __m512 s = e4m3x16(sb, 0.5f * scale2);
    __m512 c[TT];
    for (int t = 0; t < tt; t++) {
        __m512 d = nblk == 16 ? _mm512_castps256_ps512(_mm256_loadu_ps(a[t].d + g / 2))
                              : _mm512_maskz_loadu_ps(mask16(nblk / 2), a[t].d + g / 2);
        c[t] = _mm512_mul_ps(s, _mm512_permutexvar_ps(lane_blocks(0, 2), d));
    }
    for (size_t j = 0; 8 * j < nblk; j++) {
        size_t half = 8 * min_size(8, nblk - 8 * j);
        __mmask64 lm = mask64(half);
        const uint8_t *wp = row + 8 * g + 64 * j;
        PREFETCH(wp);
        __m512i v = load_bytes(lm, wp);
        __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
#if NVFP4_HIGH_NIBBLE_FIRST
        __m512i ue = _mm512_shuffle_epi8(lut, hi), uo = _mm512_shuffle_epi8(lut, lo);
#else
        __m512i ue = _mm512_shuffle_epi8(lut, lo), uo = _mm512_shuffle_epi8(lut, hi);
#endif
        __m512i idx = lane_blocks((int)(8 * j), 2);
        for (int t = 0; t < tt; t++) {
            const int8_t *pc = a[t].p + 16 * (g + 8 * j);
            __m512i p = load_i32(mask16(half / 4), a[t].g2 + 2 * (g + 8 * j));
            p = _mm512_dpbusd_epi32(p, ue, load_bytes(lm, pc));
            p = _mm512_dpbusd_epi32(p, uo, load_bytes(lm, pc + half));
            acc->v[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, c[t]), acc->v[t]);
        }
    }
}

/* One row against tokens t < tt over scale blocks [b0, b1) (a multiple of 16 from b0, then a
 * shorter last group, masks folded away in the whole ones), adding into *state. */
VNNI512 INLINE void int_tile(enum qformat f, const qmat *m, size_t r, const qact *a, int tt, size_t b0, size_t b1,
                             accs *state) {
    rowp p = row_of(m, r);
    size_t full = b0 + ((b1 - b0) & ~(size_t)15);
    accs acc = *state;
    for (size_t b = b0; b <= full; b += 16) {
        size_t nblk = b < full ? 16 : b1 - full;
        if (nblk == 0) break;
        switch (f) {
        case QF_Q8:
            if (nblk == 16) q8_group((const int8_t *)p.w, (const uint16_t *)p.s, b, 16, a, tt, &acc);
            else q8_group((const int8_t *)p.w, (const uint16_t *)p.s, b, nblk, a, tt, &acc);
            break;
        case QF_Q4:
            if (nblk == 16) q4_group(p.w, (const uint16_t *)p.s, b, 16, a, tt, &acc);
            else q4_group(p.w, (const uint16_t *)p.s, b, nblk, a, tt, &acc);
            break;
        default:
            if (nblk == 16) nvfp4_group(p.w, p.s, m->scale, b, 16, a, tt, &acc);
            else nvfp4_group(p.w, p.s, m->scale, b, nblk, a, tt, &acc);
            break;
        }
    }
    *state = acc;
}

/* Rows in groups of ROW_GROUP, tokens in tiles of TT. With more than two tokens a row pass
 * covers 1024 columns at a time for the whole row group: the tokens' activations (2 bytes per
 * column each) then stay in L1 from row to row instead of streaming from L2 for every row. */
VNNI512 INLINE void int_rows(enum qformat f, const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq,
                             size_t ntok, float *y, size_t ldy) {
    size_t nb = f == QF_NVFP4 ? m->cols / 16 : m->cols / 32;
    size_t span = ntok <= 2 ? nb : f == QF_NVFP4 ? 64 : 32;
    for (size_t rg = r0; rg < r1; rg += ROW_GROUP) {
        size_t re = min_size(r1, rg + ROW_GROUP);
        for (size_t t0 = 0; t0 < ntok; t0 += TT) {
            int tt = (int)min_size(TT, ntok - t0);
            qact a[TT];
            for (int t = 0; t < tt; t++) a[t] = qa_view((const uint8_t *)xq + (t0 + t) * ldxq, m->cols);
            accs state[ROW_GROUP];
            for (size_t r = rg; r < re; r++)
                for (int t = 0; t < TT; t++) state[r - rg].v[t] = _mm512_setzero_ps();
            for (size_t b0 = 0; b0 < nb; b0 += span) {
                size_t b1 = min_size(nb, b0 + span);
                for (size_t r = rg; r < re; r++) {
                    switch (tt) {
                    case 1: int_tile(f, m, r, a, 1, b0, b1, &state[r - rg]); break;
                    case 2: int_tile(f, m, r, a, 2, b0, b1, &state[r - rg]); break;
                    case 3: int_tile(f, m, r, a, 3, b0, b1, &state[r - rg]); break;
                    default: int_tile(f, m, r, a, 4, b0, b1, &state[r - rg]); break;
                    }
                }
            }
            for (size_t r = rg; r < re; r++)
                for (int t = 0; t < tt; t++) y[(t0 + t) * ldy + r] = _mm512_reduce_add_ps(state[r - rg].v[t]);
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

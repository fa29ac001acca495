/*
 * AVX2 kernels for quantized weights, for x86-64 CPUs without AVX-512 (layouts in
 * quant_internal.h). The same shapes as quant_avx512.c at half the width, one block at a time:
 * - exact path: 32 columns dequantized into four ymm registers, up to 4 tokens per row pass;
 * - int8 path: per block of 32, vpmaddubsw (unsigned x signed bytes, pairs summed in int16)
 *   then vpmaddwd by ones (int32), as llama.cpp does without VNNI. The int16 pair sums cannot
 *   saturate: |w| <= 128 against |q| <= 127 (Q8, sign trick), codes <= 15 (Q4), |2*e2m1| <= 12.
 * Columns past the last multiple of 32 (FP8 rows of any width, NVFP4 rows ending in half a
 * block) take the scalar code.
 */
#include "quant_internal.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))
#define TT 4

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* One f16 scale widened into all lanes by a broadcast load (a scalar conversion compiled to
 * vpinsrw into an accumulator's register, chaining every block to the previous FMA). */
AVX2 INLINE __m256 half_x8(const uint16_t *h) { return _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_set1_epi16((short)*h))); }


/* The weights 8 KiB ahead, as in quant_avx512.c. */
#define PREFETCH(p) _mm_prefetch((const char *)(p) + 8192, _MM_HINT_T0)

typedef struct {
    __m256 v[4]; /* columns k..k+7, k+8..k+15, k+16..k+23, k+24..k+31 */
} w32;

AVX2 INLINE __m256 widen8(__m128i bytes) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)); }

AVX2 INLINE w32 deq_q8(const uint8_t *row, const uint8_t *srow, size_t k) {
    __m256 s = half_x8((const uint16_t *)srow + k / 32);
    w32 r;
    for (int i = 0; i < 4; i++) r.v[i] = _mm256_mul_ps(widen8(_mm_loadl_epi64((const __m128i *)(row + k + 8 * i))), s);
    return r;
}

AVX2 INLINE w32 deq_q4(const uint8_t *row, const uint8_t *srow, size_t k) {
    __m128i v = _mm_loadu_si128((const __m128i *)(row + k / 2)), nib = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    __m128i lo = _mm_and_si128(v, nib), hi = _mm_and_si128(_mm_srli_epi16(v, 4), nib);
    __m128i n0 = _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), eight), n1 = _mm_sub_epi8(_mm_unpackhi_epi8(lo, hi), eight);
    __m256 s = half_x8((const uint16_t *)srow + k / 32);
    w32 r = {{_mm256_mul_ps(widen8(n0), s), _mm256_mul_ps(widen8(_mm_srli_si128(n0, 8)), s),
              _mm256_mul_ps(widen8(n1), s), _mm256_mul_ps(widen8(_mm_srli_si128(n1, 8)), s)}};
    return r;
}

/* E4M3 through half precision, as in quant_avx512.c (e4m3_to_half_bits); scale is scale * 256.
 * A NaN code anywhere in the 32 bytes sends them through the scalar decoder. */
AVX2 INLINE w32 deq_fp8(const uint8_t *row, float scale, size_t k) {
    __m128i mask = _mm_set1_epi8(0x7f);
    __m256i keep = _mm256_set1_epi16((short)0xbf80);
    __m256 s = _mm256_set1_ps(scale);
    w32 r;
    int nan = 0;
    for (int i = 0; i < 2; i++) {
        __m128i b = _mm_loadu_si128((const __m128i *)(row + k + 16 * i));
        nan |= _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(b, mask), mask));
        __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), keep);
        r.v[2 * i] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), s);
        r.v[2 * i + 1] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), s);
    }
    if (__builtin_expect(nan != 0, 0)) {
        float tmp[32];
        for (int e = 0; e < 32; e++) tmp[e] = q_e4m3_to_float(row[k + e]) * (scale * 0x1p-8f);
        for (int i = 0; i < 4; i++) r.v[i] = _mm256_loadu_ps(tmp + 8 * i);
    }
    return r;
}

/* Eight codes (bytes, low 4 bits) -> E2M1 values: magnitude by vpermps (low 3 bits), sign from
 * bit 3. */
AVX2 INLINE __m256 e2m1x8(__m128i codes) {
    __m256i c = _mm256_cvtepu8_epi32(codes);
    __m256 mag = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q_e2m1_values), c);
    __m256i sign = _mm256_and_si256(_mm256_slli_epi32(c, 28), _mm256_set1_epi32((int)0x80000000u));
    return _mm256_xor_ps(mag, _mm256_castsi256_ps(sign));
}

AVX2 INLINE w32 deq_nvfp4(const uint8_t *row, const uint8_t *srow, float scale2, size_t k) {
    __m128i v = _mm_loadu_si128((const __m128i *)(row + k / 2)), nib = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(v, nib), hi = _mm_and_si128(_mm_srli_epi16(v, 4), nib);
#if NVFP4_HIGH_NIBBLE_FIRST
    __m128i ev = hi, od = lo;
#else
    __m128i ev = lo, od = hi;
#endif
    __m128i n0 = _mm_unpacklo_epi8(ev, od), n1 = _mm_unpackhi_epi8(ev, od);
    __m256 s0 = _mm256_set1_ps(q_e4m3_to_float(srow[k / 16]) * scale2);
    __m256 s1 = _mm256_set1_ps(q_e4m3_to_float(srow[k / 16 + 1]) * scale2);
    w32 r = {{_mm256_mul_ps(e2m1x8(n0), s0), _mm256_mul_ps(e2m1x8(_mm_srli_si128(n0, 8)), s0),
              _mm256_mul_ps(e2m1x8(n1), s1), _mm256_mul_ps(e2m1x8(_mm_srli_si128(n1, 8)), s1)}};
    return r;
}

AVX2 INLINE w32 deq(enum qformat f, const uint8_t *row, const uint8_t *srow, float scale, size_t k) {
    switch (f) {
    case QF_Q8: return deq_q8(row, srow, k);
    case QF_Q4: return deq_q4(row, srow, k);
    case QF_FP8: return deq_fp8(row, scale, k);
    default: return deq_nvfp4(row, srow, scale, k);
    }
}

AVX2 INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- exact path ------------------------------------------------------------------------------ */

AVX2 INLINE void f32_tile(enum qformat f, const qmat *m, size_t r, const float *x, size_t ldx, int tt, float *out) {
    const uint8_t *row = m->w + r * qmat_row_bytes(m), *srow = q_scale_row(m, r);
    float scale = m->format == QF_FP8 ? m->scale * 256.0f : m->scale;
    size_t main = m->cols & ~(size_t)31;
    /* Four FMA chains per token for one or two tokens (two chains measured half the speed:
     * bound by the FMA latency); two for more, which is all 16 ymm registers hold. */
    const int chains = tt <= 2 ? 4 : 2;
    __m256 acc[TT][4];
    for (int t = 0; t < TT; t++)
        for (int i = 0; i < 4; i++) acc[t][i] = _mm256_setzero_ps();
    for (size_t k = 0; k < main; k += 32) {
        PREFETCH(row + (f == QF_Q8 || f == QF_FP8 ? k : k / 2));
        w32 a = deq(f, row, srow, scale, k);
        for (int t = 0; t < tt; t++) {
            const float *xt = x + t * ldx + k;
            for (int i = 0; i < 4; i++)
                acc[t][i % chains] = _mm256_fmadd_ps(a.v[i], _mm256_loadu_ps(xt + 8 * i), acc[t][i % chains]);
        }
    }
    for (int t = 0; t < tt; t++) {
        float s = hsum(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3])));
        for (size_t k = main; k < m->cols; k++) s += q_weight_scalar(m, row, srow, k) * x[t * ldx + k];
        out[t] = s;
    }
}

AVX2 INLINE void f32_rows(enum qformat f, const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx,
                          size_t ntok, float *y, size_t ldy) {
    for (size_t t0 = 0; t0 < ntok; t0 += TT) {
        int tt = (int)min_size(TT, ntok - t0);
        for (size_t r = r0; r < r1; r++) {
            float out[TT];
            switch (tt) {
            case 1: f32_tile(f, m, r, x + t0 * ldx, ldx, 1, out); break;
            case 2: f32_tile(f, m, r, x + t0 * ldx, ldx, 2, out); break;
            case 3: f32_tile(f, m, r, x + t0 * ldx, ldx, 3, out); break;
            default: f32_tile(f, m, r, x + t0 * ldx, ldx, 4, out); break;
            }
            for (int t = 0; t < tt; t++) y[(t0 + t) * ldy + r] = out[t];
        }
    }
}

AVX2 void q_gemv_f32_avx2(const qmat *m, size_t r0, size_t r1, const float *x, size_t ldx, size_t ntok, float *y,
                          size_t ldy) {
    switch (m->format) {
    case QF_Q8: f32_rows(QF_Q8, m, r0, r1, x, ldx, ntok, y, ldy); break;
    case QF_Q4: f32_rows(QF_Q4, m, r0, r1, x, ldx, ntok, y, ldy); break;
    case QF_FP8: f32_rows(QF_FP8, m, r0, r1, x, ldx, ntok, y, ldy); break;
    case QF_NVFP4: f32_rows(QF_NVFP4, m, r0, r1, x, ldx, ntok, y, ldy); break;
    }
}

AVX2 INLINE void dequant_rows(enum qformat f, const qmat *m, size_t r0, size_t r1, float *out) {
    size_t main = m->cols & ~(size_t)31;
    float scale = m->format == QF_FP8 ? m->scale * 256.0f : m->scale;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = m->w + r * qmat_row_bytes(m), *srow = q_scale_row(m, r);
        float *o = out + (r - r0) * m->cols;
        for (size_t k = 0; k < main; k += 32) {
            w32 a = deq(f, row, srow, scale, k);
            for (int i = 0; i < 4; i++) _mm256_storeu_ps(o + k + 8 * i, a.v[i]);
        }
        for (size_t k = main; k < m->cols; k++) o[k] = q_weight_scalar(m, row, srow, k);
    }
}

AVX2 void q_dequant_avx2(const qmat *m, size_t r0, size_t r1, float *out) {
    switch (m->format) {
    case QF_Q8: dequant_rows(QF_Q8, m, r0, r1, out); break;
    case QF_Q4: dequant_rows(QF_Q4, m, r0, r1, out); break;
    case QF_FP8: dequant_rows(QF_FP8, m, r0, r1, out); break;
    case QF_NVFP4: dequant_rows(QF_NVFP4, m, r0, r1, out); break;
    }
}

/* ---- quantizing activations ------------------------------------------------------------------ */

/* As q_quantize_act_avx512, with AVX2's in-lane packs: vpackssdw/vpacksswb interleave the four
 * vectors by 128-bit lane, and one vpermd restores column order. */
AVX2 void q_quantize_act_avx2(const float *x, size_t cols, void *xq) {
    size_t off[6];
    qa_offsets(cols, off);
    uint8_t *base = (uint8_t *)xq;
    int8_t *q = (int8_t *)base, *pk = (int8_t *)(base + off[0]);
    float *d = (float *)(base + off[1]);
    int32_t *h = (int32_t *)(base + off[2]), *g = (int32_t *)(base + off[3]), *g2 = (int32_t *)(base + off[4]);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    /* per 128-bit lane: the 8 even bytes, then the 8 odd */
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10,
                                           12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (size_t blk = 0; blk < cols / 32; blk++) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + 32 * blk + 8 * i);
            m = _mm256_max_ps(m, _mm256_and_ps(v[i], abs_mask));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4), scale = amax / 127.0f, inv = scale > 0 ? 1.0f / scale : 0.0f;
        d[blk] = scale;
        __m256 vi = _mm256_set1_ps(inv);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v[0], vi)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v[1], vi));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v[2], vi)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v[3], vi));
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + 32 * blk), b);
        size_t c0 = 32 * blk & ~(size_t)127, n = min_size(128, cols - c0), i = (32 * blk - c0) / 32;
        __m256i eo = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b, split), 0xd8); /* [evens | odds] */
        _mm_storeu_si128((__m128i *)(pk + c0 + 16 * i), _mm256_castsi256_si128(eo));
        _mm_storeu_si128((__m128i *)(pk + c0 + n / 2 + 16 * i), _mm256_extracti128_si256(eo, 1));
        __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), b), _mm256_set1_epi16(1));
        _mm256_storeu_si256((__m256i *)(h + 8 * blk), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s4, 7)));
        __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(b, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
        __m128i s8 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(sad, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
        s8 = _mm_sub_epi32(s8, _mm_set1_epi32(1024));
        _mm_storeu_si128((__m128i *)(g + 4 * blk), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s8, 3)));
        _mm_storeu_si128((__m128i *)(g2 + 4 * blk), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s8, 4)));
    }
}

/* ---- int8 path --------------------------------------------------------------------------------- */

AVX2 INLINE __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* Activation block blk's contribution for a 4-bit row, in scalar code: the last block of a row
 * with an odd number of blocks (the vector code takes them in pairs). */
static inline float block_scalar(const qmat *m, const uint8_t *row, const uint8_t *srow, const qact *a, size_t blk) {
    static const int e2m1_twice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    float sum = 0;
    for (size_t h = 0; h < 2; h++) { /* NVFP4: two scales; Q4: one */
        int32_t dot = 0;
        for (size_t k = 32 * blk + 16 * h; k < 32 * blk + 16 * h + 16; k++) {
            if (m->format == QF_NVFP4) {
                int c = (row[k / 2] >> (4 * ((k & 1) ^ NVFP4_HIGH_NIBBLE_FIRST))) & 0xf;
                dot += e2m1_twice[c] * a->q[k];
            } else {
                dot += (((row[k / 2] >> (4 * (k & 1))) & 0xf) - 8) * a->q[k];
            }
        }
        float ws = m->format == QF_NVFP4 ? q_e4m3_to_float(srow[2 * blk + h]) * (0.5f * m->scale)
                                         : q_half_to_float(((const uint16_t *)srow)[blk]);
        sum += ws * a->d[blk] * (float)dot;
    }
    return sum;
}

/* 8 lanes from a pair of 4 values: lane l takes value l / 4. */
#define PAIR_BY_4 _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)

/* Q8, one row: per block of 32, |w| against q with w's sign (vpsignb), 8 int32 lanes, scaled
 * by the weight scale times d. */
AVX2 INLINE void q8_row(const uint8_t *row, const uint8_t *srow, size_t cols, const qact *a, int tt, __m256 *acc) {
    const uint16_t *sw = (const uint16_t *)srow;
    for (size_t blk = 0; blk < cols / 32; blk++) {
        __m256 s = half_x8(sw + blk);
        PREFETCH(row + 32 * blk);
        __m256i w = _mm256_loadu_si256((const __m256i *)(row + 32 * blk)), aw = _mm256_abs_epi8(w);
        for (int t = 0; t < tt; t++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(a[t].q + 32 * blk));
            __m256i p = dot_u8s8(aw, _mm256_sign_epi8(x, w));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(s, _mm256_set1_ps(a[t].d[blk])), acc[t]);
        }
    }
}

/* Q4 and NVFP4, one row, two activation blocks (64 columns, 32 weight bytes) per step; the pair
 * lies in one 128-column chunk of the nibble order, so its 32 even and 32 odd activations are
 * contiguous. The low nibbles meet the evens and the high ones the odds (vpmaddubsw each), the
 * two int16 results add (|sum| <= 4 * 15 * 127), and vpmaddwd leaves lane l = columns
 * 8l..8l+7. Q4 codes c = w + 8 are already unsigned and the lanes start from the package's
 * g = -8 * sum(q); NVFP4 codes become 2*e2m1 (vpshufb), whose sign moves onto q (vpsignb). */
AVX2 INLINE void q4_row(enum qformat f, const qmat *m, const uint8_t *row, const uint8_t *srow, const qact *a, int tt,
                        __m256 *acc) {
    size_t cols = m->cols, nb = cols / 32;
    const __m256i nib = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    const __m256i lut = _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12, 0, 1, 2, 3, 4, 6, 8,
                                         12, 0, -1, -2, -3, -4, -6, -8, -12);
    size_t blk = 0;
    for (; blk + 2 <= nb; blk += 2) {
        PREFETCH(row + 16 * blk);
        __m256i v = _mm256_loadu_si256((const __m256i *)(row + 16 * blk));
        __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
        __m256 s;
        __m256i we = lo, wo = hi;
        if (f == QF_NVFP4) {
#if NVFP4_HIGH_NIBBLE_FIRST
            we = _mm256_shuffle_epi8(lut, hi);
            wo = _mm256_shuffle_epi8(lut, lo);
#else
            we = _mm256_shuffle_epi8(lut, lo);
            wo = _mm256_shuffle_epi8(lut, hi);
#endif
            /* four E4M3 scales through half precision (see quant_avx512.c), lane l takes l / 2 */
            __m128i b = _mm_cvtsi32_si128(*(const int32_t *)(srow + 2 * blk));
            __m128i h = _mm_and_si128(_mm_slli_epi16(_mm_cvtepi8_epi16(b), 7), _mm_set1_epi16((short)0xbf80));
            __m128 f4 = _mm_mul_ps(_mm_cvtph_ps(h), _mm_set1_ps(128.0f * m->scale)); /* 256 * scale2 / 2 */
            __m128i nan = _mm_cvtepi8_epi32(_mm_cmpeq_epi8(_mm_and_si128(b, _mm_set1_epi8(0x7f)), _mm_set1_epi8(0x7f)));
            f4 = _mm_blendv_ps(f4, _mm_set1_ps(__builtin_nanf("")), _mm_castsi128_ps(nan));
            s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(f4), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
        } else {
            __m128 f2 = _mm_cvtph_ps(_mm_cvtsi32_si128(*(const int32_t *)((const uint16_t *)srow + blk)));
            s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(f2), PAIR_BY_4);
        }
        __m256i awe = f == QF_NVFP4 ? _mm256_abs_epi8(we) : we, awo = f == QF_NVFP4 ? _mm256_abs_epi8(wo) : wo;
        size_t c0 = 32 * blk & ~(size_t)127, n = min_size(128, cols - c0), i = (32 * blk - c0) / 32;
        for (int t = 0; t < tt; t++) {
            __m256i xe = _mm256_loadu_si256((const __m256i *)(a[t].p + c0 + 16 * i));
            __m256i xo = _mm256_loadu_si256((const __m256i *)(a[t].p + c0 + n / 2 + 16 * i));
            if (f == QF_NVFP4) {
                xe = _mm256_sign_epi8(xe, we);
                xo = _mm256_sign_epi8(xo, wo);
            }
            __m256i p = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(awe, xe), _mm256_maddubs_epi16(awo, xo)), ones);
            if (f == QF_Q4) p = _mm256_add_epi32(p, _mm256_loadu_si256((const __m256i *)(a[t].g + 4 * blk)));
            __m256 d = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_castpd_ps(_mm_load_sd((const double *)(a[t].d + blk)))),
                                                PAIR_BY_4);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(s, d), acc[t]);
        }
    }
    if (blk < nb) {
        for (int t = 0; t < tt; t++) acc[t] = _mm256_add_ps(acc[t], _mm256_setr_ps(block_scalar(m, row, srow, &a[t], blk), 0, 0, 0, 0, 0, 0, 0));
    }
}

AVX2 INLINE void int_tile(enum qformat f, const qmat *m, size_t r, const qact *a, int tt, float *out) {
    const uint8_t *row = m->w + r * qmat_row_bytes(m), *srow = q_scale_row(m, r);
    __m256 acc[TT];
    for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
    if (f == QF_Q8) q8_row(row, srow, m->cols, a, tt, acc);
    else q4_row(f, m, row, srow, a, tt, acc);
    for (int t = 0; t < tt; t++) out[t] = hsum(acc[t]);
}

AVX2 INLINE void int_rows(enum qformat f, const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq,
                          size_t ntok, float *y, size_t ldy) {
    for (size_t t0 = 0; t0 < ntok; t0 += TT) {
        int tt = (int)min_size(TT, ntok - t0);
        qact a[TT];
        for (int t = 0; t < tt; t++) a[t] = qa_view((const uint8_t *)xq + (t0 + t) * ldxq, m->cols);
        for (size_t r = r0; r < r1; r++) {
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

AVX2 void q_gemv_int_avx2(const qmat *m, size_t r0, size_t r1, const void *xq, size_t ldxq, size_t ntok, float *y,
                          size_t ldy) {
    switch (m->format) {
    case QF_Q8: int_rows(QF_Q8, m, r0, r1, xq, ldxq, ntok, y, ldy); break;
    case QF_Q4: int_rows(QF_Q4, m, r0, r1, xq, ldxq, ntok, y, ldy); break;
    case QF_NVFP4: int_rows(QF_NVFP4, m, r0, r1, xq, ldxq, ntok, y, ldy); break;
    default: break;
    }
}

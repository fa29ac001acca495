#include "CKernels.h"
#include "lanes.h"
#include <float.h>
#include <immintrin.h>

/* ---- One decode query against a KV cache, AVX-512 --------------------------------------------
 * scores[s] = scale * (q . keys[s]) over the positions s < length (rows `stride` floats apart),
 * then out = inverse * sum_s weights[s] * values[s]. The softmax between the two (the exp and its
 * sum) is the caller's. Per query that is 2 * length * dh multiply-adds, read from a cache that
 * is usually far larger than L1: the loops keep each key and value row to one pass.
 *
 * Scores: 16 positions at a time, each a vector of dh products summed along the head dimension,
 * the 16 sums across lanes in one transposed reduction (sums16) instead of 16 separate ones.
 * Weighted values: two sets of accumulators (even and odd positions), so consecutive positions'
 * FMAs do not wait on each other. */

#define ATT_AVX512 __attribute__((target("avx512f,avx512dq,fma")))

/* q . k over dh floats, as a vector whose lanes sum to it. */
ATT_AVX512 static inline __m512 products(const float *q, const float *k, size_t dh) {
    __m512 acc = _mm512_setzero_ps();
    size_t v = 0;
    for (; v + 16 <= dh; v += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + v), _mm512_loadu_ps(k + v), acc);
    if (v < dh) {
        __mmask16 m = (__mmask16)((1u << (dh - v)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + v), _mm512_maskz_loadu_ps(m, k + v), acc);
    }
    return acc;
}

ATT_AVX512 float ck_attention_scores(const float *q, const float *keys, size_t stride, size_t length, size_t dh,
                                     float scale, float *scores) {
    __m512 vscale = _mm512_set1_ps(scale), vmax = _mm512_set1_ps(-FLT_MAX);
    for (size_t s0 = 0; s0 < length; s0 += 16) {
        size_t n = length - s0 < 16 ? length - s0 : 16;
        __m512 acc[16];
        for (size_t i = 0; i < 16; i++)
            acc[i] = i < n ? products(q, keys + (s0 + i) * stride, dh) : _mm512_setzero_ps();
        __mmask16 m = mask16(n);
        __m512 s = _mm512_mul_ps(sums16(acc), vscale);
        _mm512_mask_storeu_ps(scores + s0, m, s);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, s);
    }
    return _mm512_reduce_max_ps(vmax);
}

ATT_AVX512 void ck_attention_values(const float *weights, const float *values, size_t stride, size_t length,
                                    size_t dh, float inverse, float *out) {
    for (size_t v0 = 0; v0 < dh; v0 += 64) {
        /* up to 4 vectors of the head dimension at a time, the last one masked */
        size_t width = dh - v0 < 64 ? dh - v0 : 64, vecs = (width + 15) / 16;
        __mmask16 mask[4];
        for (size_t j = 0; j < 4; j++) mask[j] = mask16(j < vecs ? width - 16 * j : 0);
        __m512 even[4], odd[4];
        for (size_t j = 0; j < 4; j++) even[j] = odd[j] = _mm512_setzero_ps();
        size_t s = 0;
        for (; s + 2 <= length; s += 2) {
            const float *a = values + s * stride + v0, *b = a + stride;
            __m512 wa = _mm512_set1_ps(weights[s]), wb = _mm512_set1_ps(weights[s + 1]);
            for (size_t j = 0; j < vecs; j++) {
                even[j] = _mm512_fmadd_ps(wa, _mm512_maskz_loadu_ps(mask[j], a + 16 * j), even[j]);
                odd[j] = _mm512_fmadd_ps(wb, _mm512_maskz_loadu_ps(mask[j], b + 16 * j), odd[j]);
            }
        }
        if (s < length) {
            const float *a = values + s * stride + v0;
            __m512 wa = _mm512_set1_ps(weights[s]);
            for (size_t j = 0; j < vecs; j++)
                even[j] = _mm512_fmadd_ps(wa, _mm512_maskz_loadu_ps(mask[j], a + 16 * j), even[j]);
        }
        __m512 vinv = _mm512_set1_ps(inverse);
        for (size_t j = 0; j < vecs; j++)
            _mm512_mask_storeu_ps(out + v0 + 16 * j, mask[j], _mm512_mul_ps(_mm512_add_ps(even[j], odd[j]), vinv));
    }
}

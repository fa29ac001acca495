#include "CKernels.h"
#include <immintrin.h>

/* ---- One token of the Mamba-2 selective scan for one head, AVX-512 ----------------------------
 * Per row p of the state S [P, N]: S[p] = decay * S[p] + (dt * x[p]) * B, then
 * y[p] = S[p] . C + D * x[p]. Vectors run along n (N a multiple of 16); the sums across lanes of
 * 16 rows at a time are one transposed reduction instead of 16 separate ones (a row's own work is
 * only 2 to 8 vectors at N = 32 to 128). */

#define SSM_AVX512 __attribute__((target("avx512f,avx512dq,fma")))

/* Lane i of the result = the sum of the lanes of a[i]. */
SSM_AVX512 static inline __m512 sums16(const __m512 *a) {
    __m512 t[8], u[4], v[2];
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        __m512d p = _mm512_castps_pd(t[2 * i]), q = _mm512_castps_pd(t[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(p, q)), _mm512_castpd_ps(_mm512_unpackhi_pd(p, q)));
    }
    for (int i = 0; i < 2; i++)
        v[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(v[0], v[1], 0x88), _mm512_shuffle_f32x4(v[0], v[1], 0xDD));
}

SSM_AVX512 void ck_ssm_step(float *S, size_t P, size_t N, float decay, float dt, const float *x, const float *B,
                            const float *C, float D, float *y) {
    __m512 vdecay = _mm512_set1_ps(decay);
    for (size_t p0 = 0; p0 < P; p0 += 16) {
        size_t rows = P - p0 < 16 ? P - p0 : 16;
        __m512 acc[16];
        for (size_t i = 0; i < 16; i++) {
            acc[i] = _mm512_setzero_ps();
            if (i >= rows) continue;
            float *s = S + (p0 + i) * N;
            __m512 input = _mm512_set1_ps(dt * x[p0 + i]);
            for (size_t n = 0; n < N; n += 16) {
                __m512 updated =
                    _mm512_fmadd_ps(input, _mm512_loadu_ps(B + n), _mm512_mul_ps(vdecay, _mm512_loadu_ps(s + n)));
                _mm512_storeu_ps(s + n, updated);
                acc[i] = _mm512_fmadd_ps(updated, _mm512_loadu_ps(C + n), acc[i]);
            }
        }
        float out[16];
        _mm512_storeu_ps(out, sums16(acc));
        for (size_t i = 0; i < rows; i++) y[p0 + i] = out[i] + D * x[p0 + i];
    }
}

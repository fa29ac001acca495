#include "CKernels.h"
#include "lanes.h"
#include <immintrin.h>

/* ---- One token of the Mamba-2 selective scan for one head, AVX-512 ----------------------------
 * Per row p of the state S [P, N]: S[p] = decay * S[p] + (dt * x[p]) * B, then
 * y[p] = S[p] . C + D * x[p]. Vectors run along n (N a multiple of 16); the sums across lanes of
 * 16 rows at a time are one transposed reduction instead of 16 separate ones (a row's own work is
 * only 2 to 8 vectors at N = 32 to 128). */

#define SSM_AVX512 __attribute__((target("avx512f,avx512dq,fma")))

SSM_AVX512 void ck_ssm_step(float *S, size_t P, size_t N, float decay, float dt, const float *x, const float *B,
                            const float *C, float D, float *y) {
    __m512 vdecay = _mm512_set1_ps(decay);
    for (size_t p0 = 0; p0 < P; p0 += 16) {
        size_t rows = P - p0 < 16 ? P - p0 : 16;
        __m512 acc[16];
        /* Four rows at a time: each row's sum is a chain of FMAs (4 cycles each), so one row
         * alone waits on its own latency; four chains keep the FMA ports busy. */
        for (size_t i = 0; i < 16; i += 4) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            if (i < rows) {
                size_t r1 = i + 1 < rows ? i + 1 : i, r2 = i + 2 < rows ? i + 2 : i, r3 = i + 3 < rows ? i + 3 : i;
                float *s0 = S + (p0 + i) * N, *s1 = S + (p0 + r1) * N, *s2 = S + (p0 + r2) * N, *s3 = S + (p0 + r3) * N;
                __m512 in0 = _mm512_set1_ps(dt * x[p0 + i]), in1 = _mm512_set1_ps(dt * x[p0 + r1]);
                __m512 in2 = _mm512_set1_ps(dt * x[p0 + r2]), in3 = _mm512_set1_ps(dt * x[p0 + r3]);
                for (size_t n = 0; n < N; n += 16) {
                    __m512 b = _mm512_loadu_ps(B + n), c = _mm512_loadu_ps(C + n);
                    __m512 u0 = _mm512_fmadd_ps(in0, b, _mm512_mul_ps(vdecay, _mm512_loadu_ps(s0 + n)));
                    __m512 u1 = _mm512_fmadd_ps(in1, b, _mm512_mul_ps(vdecay, _mm512_loadu_ps(s1 + n)));
                    __m512 u2 = _mm512_fmadd_ps(in2, b, _mm512_mul_ps(vdecay, _mm512_loadu_ps(s2 + n)));
                    __m512 u3 = _mm512_fmadd_ps(in3, b, _mm512_mul_ps(vdecay, _mm512_loadu_ps(s3 + n)));
                    /* a row past `rows` repeats row i: its store writes row i's value again */
                    _mm512_storeu_ps(s3 + n, u3);
                    _mm512_storeu_ps(s2 + n, u2);
                    _mm512_storeu_ps(s1 + n, u1);
                    _mm512_storeu_ps(s0 + n, u0);
                    a0 = _mm512_fmadd_ps(u0, c, a0);
                    a1 = _mm512_fmadd_ps(u1, c, a1);
                    a2 = _mm512_fmadd_ps(u2, c, a2);
                    a3 = _mm512_fmadd_ps(u3, c, a3);
                }
            }
            acc[i] = a0;
            acc[i + 1] = a1;
            acc[i + 2] = a2;
            acc[i + 3] = a3;
        }
        float out[16];
        _mm512_storeu_ps(out, sums16(acc));
        for (size_t i = 0; i < rows; i++) y[p0 + i] = out[i] + D * x[p0 + i];
    }
}

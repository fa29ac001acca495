#include "CKernels.h"
#include <immintrin.h>
#include <string.h>

/* ---- scalar reference code (any CPU) ---------------------------------------------------- */

static inline float bf16_scalar(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float f16_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

typedef float (*widen_fn)(uint16_t);

static void gemv_scalar(widen_fn widen, const uint16_t *w, size_t cols, size_t r0, size_t r1,
                        const float *x, size_t ldx, size_t ntok, float *y, size_t ldy) {
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *row = w + r * cols;
        for (size_t t = 0; t < ntok; t++) {
            const float *xt = x + t * ldx;
            float acc = 0;
            for (size_t k = 0; k < cols; k++) acc += widen(row[k]) * xt[k];
            y[t * ldy + r] = acc;
        }
    }
}

/* ---- AVX-512: 4 rows at a time, widen 16 weights + FMA ---------------------------------- */

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX512 static inline __m512 widen_bf16_512(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

AVX512 static inline __m512 widen_f16_512(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

#define GEMV_512(NAME, WIDEN, SCALAR)                                                             \
    AVX512 static void NAME(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, \
                            size_t ldx, size_t ntok, float *y, size_t ldy) {                      \
        size_t main = cols & ~(size_t)15, r = r0;                                                 \
        for (; r + 4 <= r1; r += 4) {                                                             \
            const uint16_t *w0 = w + r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols; \
            for (size_t t = 0; t < ntok; t++) {                                                   \
                const float *xt = x + t * ldx;                                                    \
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                       \
                for (size_t k = 0; k < main; k += 16) {                                           \
                    __m512 xv = _mm512_loadu_ps(xt + k);                                          \
                    a0 = _mm512_fmadd_ps(WIDEN(w0 + k), xv, a0);                                  \
                    a1 = _mm512_fmadd_ps(WIDEN(w1 + k), xv, a1);                                  \
                    a2 = _mm512_fmadd_ps(WIDEN(w2 + k), xv, a2);                                  \
                    a3 = _mm512_fmadd_ps(WIDEN(w3 + k), xv, a3);                                  \
                }                                                                                 \
                float s0 = _mm512_reduce_add_ps(a0), s1 = _mm512_reduce_add_ps(a1);               \
                float s2 = _mm512_reduce_add_ps(a2), s3 = _mm512_reduce_add_ps(a3);               \
                for (size_t k = main; k < cols; k++) {                                            \
                    s0 += SCALAR(w0[k]) * xt[k];                                                  \
                    s1 += SCALAR(w1[k]) * xt[k];                                                  \
                    s2 += SCALAR(w2[k]) * xt[k];                                                  \
                    s3 += SCALAR(w3[k]) * xt[k];                                                  \
                }                                                                                 \
                float *yt = y + t * ldy + r;                                                      \
                yt[0] = s0; yt[1] = s1; yt[2] = s2; yt[3] = s3;                                   \
            }                                                                                     \
        }                                                                                         \
        for (; r < r1; r++) {                                                                     \
            const uint16_t *row = w + r * cols;                                                   \
            for (size_t t = 0; t < ntok; t++) {                                                   \
                const float *xt = x + t * ldx;                                                    \
                __m512 a = _mm512_setzero_ps();                                                   \
                for (size_t k = 0; k < main; k += 16)                                             \
                    a = _mm512_fmadd_ps(WIDEN(row + k), _mm512_loadu_ps(xt + k), a);             \
                float s = _mm512_reduce_add_ps(a);                                                \
                for (size_t k = main; k < cols; k++) s += SCALAR(row[k]) * xt[k];                 \
                y[t * ldy + r] = s;                                                               \
            }                                                                                     \
        }                                                                                         \
    }

GEMV_512(gemv_bf16_512, widen_bf16_512, bf16_scalar)
GEMV_512(gemv_f16_512, widen_f16_512, f16_scalar)

/* ---- AVX2: 4 rows at a time, 8 lanes ----------------------------------------------------- */

AVX2 static inline __m256 widen_bf16_256(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX2 static inline __m256 widen_f16_256(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define GEMV_256(NAME, WIDEN, SCALAR)                                                             \
    AVX2 static void NAME(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x,   \
                          size_t ldx, size_t ntok, float *y, size_t ldy) {                        \
        size_t main = cols & ~(size_t)7;                                                          \
        for (size_t r = r0; r < r1; r++) {                                                        \
            const uint16_t *row = w + r * cols;                                                   \
            for (size_t t = 0; t < ntok; t++) {                                                   \
                const float *xt = x + t * ldx;                                                    \
                __m256 a = _mm256_setzero_ps(), b = a;                                            \
                size_t k = 0;                                                                     \
                for (; k + 16 <= main; k += 16) {                                                 \
                    a = _mm256_fmadd_ps(WIDEN(row + k), _mm256_loadu_ps(xt + k), a);             \
                    b = _mm256_fmadd_ps(WIDEN(row + k + 8), _mm256_loadu_ps(xt + k + 8), b);     \
                }                                                                                 \
                for (; k < main; k += 8)                                                          \
                    a = _mm256_fmadd_ps(WIDEN(row + k), _mm256_loadu_ps(xt + k), a);             \
                float s = hsum256(_mm256_add_ps(a, b));                                           \
                for (; k < cols; k++) s += SCALAR(row[k]) * xt[k];                                \
                y[t * ldy + r] = s;                                                               \
            }                                                                                     \
        }                                                                                         \
    }

GEMV_256(gemv_bf16_256, widen_bf16_256, bf16_scalar)
GEMV_256(gemv_f16_256, widen_f16_256, f16_scalar)

/* ---- conversions -------------------------------------------------------------------------- */

AVX512 static void bf16_to_f32_512(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, widen_bf16_512(src + i));
    for (; i < n; i++) dst[i] = bf16_scalar(src[i]);
}

AVX512 static void f16_to_f32_512(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, widen_f16_512(src + i));
    for (; i < n; i++) dst[i] = f16_scalar(src[i]);
}

AVX2 static void f16_to_f32_256(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, widen_f16_256(src + i));
    for (; i < n; i++) dst[i] = f16_scalar(src[i]);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

enum isa { ISA_UNKNOWN, ISA_SCALAR, ISA_AVX2, ISA_AVX512 };

static enum isa detect(void) {
    static enum isa cached = ISA_UNKNOWN;
    if (cached == ISA_UNKNOWN) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl"))
            cached = ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            cached = ISA_AVX2;
        else
            cached = ISA_SCALAR;
    }
    return cached;
}

const char *ck_isa(void) {
    switch (detect()) {
    case ISA_AVX512: return "avx512";
    case ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}

void ck_gemv_bf16(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, size_t ldx,
                  size_t ntok, float *y, size_t ldy) {
    switch (detect()) {
    case ISA_AVX512: gemv_bf16_512(w, cols, r0, r1, x, ldx, ntok, y, ldy); break;
    case ISA_AVX2: gemv_bf16_256(w, cols, r0, r1, x, ldx, ntok, y, ldy); break;
    default: gemv_scalar(bf16_scalar, w, cols, r0, r1, x, ldx, ntok, y, ldy);
    }
}

void ck_gemv_f16(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, size_t ldx,
                 size_t ntok, float *y, size_t ldy) {
    switch (detect()) {
    case ISA_AVX512: gemv_f16_512(w, cols, r0, r1, x, ldx, ntok, y, ldy); break;
    case ISA_AVX2: gemv_f16_256(w, cols, r0, r1, x, ldx, ntok, y, ldy); break;
    default: gemv_scalar(f16_scalar, w, cols, r0, r1, x, ldx, ntok, y, ldy);
    }
}

void ck_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    if (detect() == ISA_AVX512) {
        bf16_to_f32_512(src, dst, n);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = bf16_scalar(src[i]);
    }
}

void ck_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    switch (detect()) {
    case ISA_AVX512: f16_to_f32_512(src, dst, n); break;
    case ISA_AVX2: f16_to_f32_256(src, dst, n); break;
    default:
        for (size_t i = 0; i < n; i++) dst[i] = f16_scalar(src[i]);
    }
}

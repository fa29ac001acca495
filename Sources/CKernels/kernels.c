#include "CKernels.h"
#include "lanes.h"
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

/* ---- AVX-512: one row at a time, 128 weights per iteration, 8 independent FMA chains ----
 * Measured on Zen 4 (2 threads, 256 MiB bf16): 4 rows x 16 weights with vpmovzxwd + shift
 * streamed 27.5 GB/s; this shape streams 33-34 GB/s (plain reads: 46 GB/s). Fewer concurrent
 * row streams and more independent accumulators are what help. */

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* bf16 -> f32 by interleaving with zero words: lo takes words 0-3 of each 128-bit lane, hi
 * words 4-7, so a block of 32 weights yields two vectors in the order
 * lo = {0-3, 8-11, 16-19, 24-27}, hi = {4-7, 12-15, 20-23, 28-31}; x is prepared to match. */
AVX512 static void prepare_512(const float *x, float *xp, size_t cols) {
    size_t main = cols & ~(size_t)31;
    for (size_t k = 0; k < main; k += 32) {
        for (int lane = 0; lane < 4; lane++) {
            for (int e = 0; e < 4; e++) {
                xp[k + lane * 4 + e] = x[k + lane * 8 + e];
                xp[k + 16 + lane * 4 + e] = x[k + lane * 8 + 4 + e];
            }
        }
    }
    for (size_t k = main; k < cols; k++) xp[k] = x[k];
}

AVX512 static inline __m512 bf16_lo(__m512i v) {
    return _mm512_castsi512_ps(_mm512_unpacklo_epi16(_mm512_setzero_si512(), v));
}

AVX512 static inline __m512 bf16_hi(__m512i v) {
    return _mm512_castsi512_ps(_mm512_unpackhi_epi16(_mm512_setzero_si512(), v));
}

/* Two rows against one prepared x: two weight streams in flight per thread, each x vector loaded
 * once for both rows. Each row's sum has the same order whether it is paired or not (a lone row
 * is passed as both), so a row's result never depends on how rows were split into blocks. */
AVX512 static void dot2_bf16_512(const uint16_t *w0, const uint16_t *w1, const float *xp, size_t cols, float *s0,
                                 float *s1) {
    __m512 a[4], b[4];
    for (int i = 0; i < 4; i++) a[i] = b[i] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 64 <= cols; k += 64) {
        for (int i = 0; i < 2; i++) {
            /* 8 KiB ahead, as the quantized kernels (quant_avx512.c): past a row's end it reaches
             * into the rows read next. */
            _mm_prefetch((const char *)(w0 + k + 32 * i) + 8192, _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + k + 32 * i) + 8192, _MM_HINT_T0);
            __m512i v0 = _mm512_loadu_si512(w0 + k + 32 * i), v1 = _mm512_loadu_si512(w1 + k + 32 * i);
            __m512 lo = _mm512_loadu_ps(xp + k + 32 * i), hi = _mm512_loadu_ps(xp + k + 32 * i + 16);
            a[2 * i] = _mm512_fmadd_ps(bf16_lo(v0), lo, a[2 * i]);
            a[2 * i + 1] = _mm512_fmadd_ps(bf16_hi(v0), hi, a[2 * i + 1]);
            b[2 * i] = _mm512_fmadd_ps(bf16_lo(v1), lo, b[2 * i]);
            b[2 * i + 1] = _mm512_fmadd_ps(bf16_hi(v1), hi, b[2 * i + 1]);
        }
    }
    for (; k + 32 <= cols; k += 32) {
        __m512i v0 = _mm512_loadu_si512(w0 + k), v1 = _mm512_loadu_si512(w1 + k);
        __m512 lo = _mm512_loadu_ps(xp + k), hi = _mm512_loadu_ps(xp + k + 16);
        a[0] = _mm512_fmadd_ps(bf16_lo(v0), lo, a[0]);
        a[1] = _mm512_fmadd_ps(bf16_hi(v0), hi, a[1]);
        b[0] = _mm512_fmadd_ps(bf16_lo(v1), lo, b[0]);
        b[1] = _mm512_fmadd_ps(bf16_hi(v1), hi, b[1]);
    }
    float sa = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
    float sb = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(b[0], b[1]), _mm512_add_ps(b[2], b[3])));
    for (; k < cols; k++) {
        sa += bf16_scalar(w0[k]) * xp[k];
        sb += bf16_scalar(w1[k]) * xp[k];
    }
    *s0 = sa;
    *s1 = sb;
}

/* Rows in pairs (the last one alone), each pair against every token. */
AVX512 static void gemv_bf16_512(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, size_t ldx,
                                 size_t ntok, float *y, size_t ldy) {
    for (size_t r = r0; r < r1; r += 2) {
        const uint16_t *w0 = w + r * cols, *w1 = r + 1 < r1 ? w0 + cols : w0;
        for (size_t t = 0; t < ntok; t++) {
            float s0, s1;
            dot2_bf16_512(w0, w1, x + t * ldx, cols, &s0, &s1);
            y[t * ldy + r] = s0;
            if (r + 1 < r1) y[t * ldy + r + 1] = s1;
        }
    }
}

AVX512 static float dot_f16_512(const uint16_t *w, const float *x, size_t cols) {
    __m512 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 128 <= cols; k += 128) {
        for (int i = 0; i < 8; i++) {
            if (i % 2 == 0) _mm_prefetch((const char *)(w + k + 16 * i) + 8192, _MM_HINT_T0);
            __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + k + 16 * i)));
            a[i] = _mm512_fmadd_ps(v, _mm512_loadu_ps(x + k + 16 * i), a[i]);
        }
    }
    for (; k + 16 <= cols; k += 16)
        a[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + k))), _mm512_loadu_ps(x + k),
                               a[0]);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])),
                             _mm512_add_ps(_mm512_add_ps(a[4], a[5]), _mm512_add_ps(a[6], a[7])));
    float sum = _mm512_reduce_add_ps(s);
    for (; k < cols; k++) sum += f16_scalar(w[k]) * x[k];
    return sum;
}

AVX512 static void gemv_f16_512(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, size_t ldx,
                                size_t ntok, float *y, size_t ldy) {
    for (size_t r = r0; r < r1; r++)
        for (size_t t = 0; t < ntok; t++) y[t * ldy + r] = dot_f16_512(w + r * cols, x + t * ldx, cols);
}

/* 16 bf16 values as f32: each 16-bit pattern becomes the upper half of a float's. */
AVX512 static inline __m512 widen_bf16_bits(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

AVX512 static inline __m512 widen_bf16_512(const uint16_t *p) {
    return widen_bf16_bits(_mm256_loadu_si256((const __m256i *)p));
}

AVX512 static inline __m512 widen_f16_512(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* ---- AVX2: one row at a time, 8 lanes --------------------------------------------------- */

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

/* ---- bandwidth probe ---------------------------------------------------------------------- */

AVX512 static float read_sum_512(const float *p, size_t n) {
    __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a = _mm512_add_ps(a, _mm512_loadu_ps(p + i));
        b = _mm512_add_ps(b, _mm512_loadu_ps(p + i + 16));
        c = _mm512_add_ps(c, _mm512_loadu_ps(p + i + 32));
        d = _mm512_add_ps(d, _mm512_loadu_ps(p + i + 48));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
    for (; i < n; i++) s += p[i];
    return s;
}

AVX2 static float read_sum_256(const float *p, size_t n) {
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(p + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(p + i + 8));
        c = _mm256_add_ps(c, _mm256_loadu_ps(p + i + 16));
        d = _mm256_add_ps(d, _mm256_loadu_ps(p + i + 24));
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
    for (; i < n; i++) s += p[i];
    return s;
}

/* ---- bf16 x bf16 GEMM (AVX512-BF16) -------------------------------------------------------
 * vdpbf16ps adds the products of adjacent bf16 pairs into fp32 lanes, at about twice the fp32
 * FMA rate on Zen 4 (measured 107 vs 57 GFLOP/s on one core). A panel of 32 weight rows is
 * packed as [K/2 pairs][32 rows][2] so one 64-byte load feeds 16 rows; each token's pair
 * x[t, 2p..2p+1] is broadcast. Tile: 12 tokens x 32 rows = 24 accumulators. */

#define BF16DOT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))
#define GEMM_ROWS 32
#define GEMM_TOKENS 12

size_t ck_gemm_bf16_scratch(size_t cols) {
    size_t pairs = (cols + 1) / 2;
    return pairs * GEMM_ROWS * 4 + 64 + GEMM_TOKENS * GEMM_ROWS * 4;
}

/* Packs rows [r, r + n) (n <= 32, missing rows zero) of W into pairs-major order. */
static void pack_panel(const uint16_t *w, size_t cols, size_t r, size_t n, uint32_t *panel) {
    size_t pairs = (cols + 1) / 2;
    for (size_t i = 0; i < GEMM_ROWS; i++) {
        const uint16_t *row = w + (r + i) * cols;
        for (size_t p = 0; p < pairs; p++) {
            uint32_t lo = 0, hi = 0;
            if (i < n) {
                lo = row[2 * p];
                hi = 2 * p + 1 < cols ? row[2 * p + 1] : 0;
            }
            panel[p * GEMM_ROWS + i] = lo | (hi << 16);
        }
    }
}

/* out[t][0..32) = panel . x_t for t < m (m <= 12); x rows are bf16 pairs (uint32). */
BF16DOT static void gemm_tile(const uint32_t *panel, size_t pairs, const uint32_t *x, size_t xstride,
                              size_t m, float *out, size_t ldo) {
    __m512 acc[GEMM_TOKENS][2];
    for (int t = 0; t < GEMM_TOKENS; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    if (m == GEMM_TOKENS) {
        for (size_t p = 0; p < pairs; p++) {
            __m512bh w0 = (__m512bh)_mm512_loadu_si512(panel + p * GEMM_ROWS);
            __m512bh w1 = (__m512bh)_mm512_loadu_si512(panel + p * GEMM_ROWS + 16);
            for (int t = 0; t < GEMM_TOKENS; t++) {
                __m512bh xv = (__m512bh)_mm512_set1_epi32((int)x[t * xstride + p]);
                acc[t][0] = _mm512_dpbf16_ps(acc[t][0], w0, xv);
                acc[t][1] = _mm512_dpbf16_ps(acc[t][1], w1, xv);
            }
        }
    } else {
        for (size_t p = 0; p < pairs; p++) {
            __m512bh w0 = (__m512bh)_mm512_loadu_si512(panel + p * GEMM_ROWS);
            __m512bh w1 = (__m512bh)_mm512_loadu_si512(panel + p * GEMM_ROWS + 16);
            for (size_t t = 0; t < m; t++) {
                __m512bh xv = (__m512bh)_mm512_set1_epi32((int)x[t * xstride + p]);
                acc[t][0] = _mm512_dpbf16_ps(acc[t][0], w0, xv);
                acc[t][1] = _mm512_dpbf16_ps(acc[t][1], w1, xv);
            }
        }
    }
    for (size_t t = 0; t < m; t++) {
        _mm512_storeu_ps(out + t * ldo, acc[t][0]);
        _mm512_storeu_ps(out + t * ldo + 16, acc[t][1]);
    }
}

BF16DOT static void gemm_bf16_512(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint16_t *x,
                                  size_t ntok, float *y, size_t ldy, void *scratch) {
    size_t pairs = (cols + 1) / 2;
    uint32_t *panel = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *tile = (float *)(panel + pairs * GEMM_ROWS);
    /* x rows as pairs: a row of odd length would split pairs across rows, so require even. */
    const uint32_t *xp = (const uint32_t *)x;
    for (size_t r = r0; r < r1; r += GEMM_ROWS) {
        size_t n = r1 - r < GEMM_ROWS ? r1 - r : GEMM_ROWS;
        pack_panel(w, cols, r, n, panel);
        for (size_t t = 0; t < ntok; t += GEMM_TOKENS) {
            size_t m = ntok - t < GEMM_TOKENS ? ntok - t : GEMM_TOKENS;
            if (n == GEMM_ROWS) {
                gemm_tile(panel, pairs, xp + t * pairs, pairs, m, y + t * ldy + r, ldy);
            } else {
                gemm_tile(panel, pairs, xp + t * pairs, pairs, m, tile, GEMM_ROWS);
                for (size_t i = 0; i < m; i++) memcpy(y + (t + i) * ldy + r, tile + i * GEMM_ROWS, n * sizeof(float));
            }
        }
    }
}

/* ---- AVX512-BF16 for decode batches: row-major weights read as they are --------------------
 * A decode step of several sequences (9 to 64 rows) is too small to pay for packing weight panels
 * (the GEMM above packs every panel on every call, which reads and writes the weights once more).
 * Here a block of 4 weight rows meets 4 tokens at a time: per 32 columns, 4 weight loads and 4
 * activation loads feed 16 vdpbf16ps, each lane summing pairs of columns; the 16 accumulators
 * are reduced across lanes once per block. Weights stream from memory once per row block and
 * then from L1/L2 for the block's other token groups. */

#define DP_ROWS 4
#define DP_TOKENS 4

/* {sum(a), sum(b), sum(c), sum(d)} */
BF16DOT static inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 a2 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    __m256 b2 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    __m256 c2 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    __m256 d2 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a2, b2), _mm256_hadd_ps(c2, d2));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* Rows [r, r + nr) x tokens [t, t + nt), nr, nt <= 4: missing rows and tokens repeat the first
 * (their results are not stored), so the loop body has no conditions. */
BF16DOT static void dp_block(const uint16_t *w, size_t cols, size_t r, size_t nr, const uint16_t *x, size_t ldx,
                             size_t t, size_t nt, float *y, size_t ldy) {
    const uint16_t *wr[DP_ROWS], *xt[DP_TOKENS];
    for (size_t i = 0; i < DP_ROWS; i++) wr[i] = w + (r + (i < nr ? i : 0)) * cols;
    for (size_t j = 0; j < DP_TOKENS; j++) xt[j] = x + (t + (j < nt ? j : 0)) * ldx;
    __m512 acc[DP_ROWS][DP_TOKENS];
    for (int i = 0; i < DP_ROWS; i++)
        for (int j = 0; j < DP_TOKENS; j++) acc[i][j] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 32 <= cols; k += 32) {
        __m512bh wv[DP_ROWS], xv[DP_TOKENS];
        for (int i = 0; i < DP_ROWS; i++) {
            if (t == 0) _mm_prefetch((const char *)(wr[i] + k) + 4096, _MM_HINT_T0);
            wv[i] = (__m512bh)_mm512_loadu_si512(wr[i] + k);
        }
        for (int j = 0; j < DP_TOKENS; j++) xv[j] = (__m512bh)_mm512_loadu_si512(xt[j] + k);
        for (int i = 0; i < DP_ROWS; i++)
            for (int j = 0; j < DP_TOKENS; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], xv[j]);
    }
    if (k < cols) {
        __mmask32 m = (__mmask32)((1u << (cols - k)) - 1);
        __m512bh wv[DP_ROWS], xv[DP_TOKENS];
        for (int i = 0; i < DP_ROWS; i++) wv[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, wr[i] + k);
        for (int j = 0; j < DP_TOKENS; j++) xv[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, xt[j] + k);
        for (int i = 0; i < DP_ROWS; i++)
            for (int j = 0; j < DP_TOKENS; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], xv[j]);
    }
    for (size_t j = 0; j < nt; j++) {
        float sums[4];
        _mm_storeu_ps(sums, reduce4(acc[0][j], acc[1][j], acc[2][j], acc[3][j]));
        for (size_t i = 0; i < nr; i++) y[(t + j) * ldy + r + i] = sums[i];
    }
}

/* ---- f32 FMAs for decode batches: tokens across the lanes ------------------------------------
 * For CPUs with two 512-bit FMA ports, where vdpbf16ps gives no more multiply-adds per cycle
 * (measured on an Intel Xeon VM, family 6 model 207); activations stay f32. The activations are
 * laid out once per product with 16 tokens across a vector (ck_tokens_across: xt[k][16 * groups]),
 * so one FMA multiplies a weight, broadcast from memory, with 16 tokens: no sums across lanes
 * (4-row x 4-token dot products, with their per-tile sums, ran 97-100 GFLOP/s at 1024 x 384 and
 * 16 tokens on that VM; this kernel 110-120, the pure FMA loop alone 158-175). A block of
 * 16 weight rows is widened to f32 128 columns at a time into a scratch in L1 (rows padded apart
 * against cache-set conflicts); 16 accumulators (one per row, each 16 tokens) carry over the
 * column chunks per token group, and a 16 x 16 transpose turns them into rows of y.
 * Each y[t, r] is the plain sum over k in order, whatever the batch. */

#define ACROSS_ROWS 16
#define ACROSS_CHUNK 128
#define ACROSS_STRIDE (ACROSS_CHUNK + 16)
#define ACROSS_GROUPS 4 /* token groups a block of rows carries: 64 tokens */

size_t ck_tokens_across_width(size_t ntok) { return (ntok + 15) / 16 * 16; }

/* r[i] lane j -> r[j] lane i. */
AVX512 static inline void transpose16(__m512 *r) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[i + c], i = 4b: column 4L + c of rows i..i+3 in 128-bit lane L. */
    for (int i = 0; i < 16; i += 4) {
        for (int h = 0; h < 2; h++) {
            __m512d a = _mm512_castps_pd(t[i + h]), b = _mm512_castps_pd(t[i + 2 + h]);
            u[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            u[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    }
    for (int c = 0; c < 4; c++) {
        __m512 a0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), a1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 b0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), b1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(a0, b0, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(a0, b0, 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(a1, b1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(a1, b1, 0xDD);
    }
}

/* 16 tokens x 16 columns at a time: masked loads (missing tokens and columns zero), one transpose. */
AVX512 static void tokens_across_512(const float *x, size_t ldx, size_t ntok, size_t cols, float *xt) {
    size_t width = ck_tokens_across_width(ntok);
    for (size_t t0 = 0; t0 < width; t0 += 16) {
        for (size_t k0 = 0; k0 < cols; k0 += 16) {
            size_t n = cols - k0 < 16 ? cols - k0 : 16;
            __mmask16 m = mask16(n);
            __m512 v[16];
            for (size_t i = 0; i < 16; i++)
                v[i] = t0 + i < ntok ? _mm512_maskz_loadu_ps(m, x + (t0 + i) * ldx + k0) : _mm512_setzero_ps();
            transpose16(v);
            for (size_t j = 0; j < n; j++) _mm512_storeu_ps(xt + (k0 + j) * width + t0, v[j]);
        }
    }
}

/* Widens columns [k0, k0 + n) of the block's 16 rows (missing rows repeat the first) into wf,
 * and prefetches what the next call widens: the row's next chunk, or after the last chunk the
 * first of the next block's row (16 streams at once are more than the hardware prefetcher follows:
 * 1.10x at 4096 x 384, 16 tokens, weights in L3). */
AVX512 static void widen_block(const uint16_t *w, size_t cols, size_t r, size_t nr, size_t k0, size_t n, float *wf) {
    size_t whole = n & ~(size_t)15;
    for (size_t i = 0; i < ACROSS_ROWS; i++) {
        const uint16_t *src = w + (r + (i < nr ? i : 0)) * cols + k0;
        const char *next = k0 + n < cols ? (const char *)(src + n) : (const char *)(w + (r + ACROSS_ROWS + i) * cols);
        for (int line = 0; line < ACROSS_CHUNK * 2 / 64; line++) _mm_prefetch(next + 64 * line, _MM_HINT_T0);
        float *dst = wf + i * ACROSS_STRIDE;
        size_t k = 0;
        for (; k < whole; k += 16) _mm512_store_ps(dst + k, widen_bf16_512(src + k));
        for (; k < n; k++) dst[k] = bf16_scalar(src[k]);
    }
}

/* Rows [r, r + nr) x token groups [g0, g0 + ng) over all columns. */
AVX512 static void across_block(const uint16_t *w, size_t cols, size_t r, size_t nr, const float *xt, size_t width,
                                size_t ntok, size_t g0, size_t ng, float *y, size_t ldy) {
    float wf[ACROSS_ROWS * ACROSS_STRIDE] __attribute__((aligned(64)));
    __m512 carried[ACROSS_GROUPS][ACROSS_ROWS];
    for (size_t k0 = 0; k0 < cols; k0 += ACROSS_CHUNK) {
        size_t n = cols - k0 < ACROSS_CHUNK ? cols - k0 : ACROSS_CHUNK;
        widen_block(w, cols, r, nr, k0, n, wf);
        for (size_t g = 0; g < ng; g++) {
            __m512 acc[ACROSS_ROWS];
            for (int i = 0; i < ACROSS_ROWS; i++) acc[i] = k0 == 0 ? _mm512_setzero_ps() : carried[g][i];
            const float *xg = xt + k0 * width + (g0 + g) * 16;
            for (size_t k = 0; k < n; k++) {
                __m512 xv = _mm512_loadu_ps(xg + k * width);
                for (int i = 0; i < ACROSS_ROWS; i++)
                    acc[i] = _mm512_fmadd_ps(xv, _mm512_set1_ps(wf[i * ACROSS_STRIDE + k]), acc[i]);
            }
            if (k0 + n < cols) {
                for (int i = 0; i < ACROSS_ROWS; i++) carried[g][i] = acc[i];
                continue;
            }
            transpose16(acc);
            size_t t0 = (g0 + g) * 16, nt = ntok - t0 < 16 ? ntok - t0 : 16;
            __mmask16 m = (__mmask16)((1u << nr) - 1);
            for (size_t j = 0; j < nt; j++) _mm512_mask_storeu_ps(y + (t0 + j) * ldy + r, m, acc[j]);
        }
    }
}

void ck_gemv_bf16_across(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *xt, size_t ntok, float *y,
                         size_t ldy) {
    size_t width = ck_tokens_across_width(ntok), groups = width / 16;
    for (size_t g0 = 0; g0 < groups; g0 += ACROSS_GROUPS)
        for (size_t r = r0; r < r1; r += ACROSS_ROWS)
            across_block(w, cols, r, r1 - r < ACROSS_ROWS ? r1 - r : ACROSS_ROWS, xt, width, ntok, g0,
                         groups - g0 < ACROSS_GROUPS ? groups - g0 : ACROSS_GROUPS, y, ldy);
}


/* ---- f32 FMAs for short prompts: rows across the lanes -----------------------------------------
 * Products of 65-128 tokens (prompt chunks, a decode batch with a prompt beside it) of bf16
 * weights with f32 activations: too many tokens for the kernel above to keep its accumulators,
 * too few for OpenBLAS's sgemm to repay widening and packing a tile of weights (measured on the
 * Intel Xeon VM, one thread, 6144 x 2048 weights: 141 against 105 GFLOP/s at 96 tokens, 156
 * against 125 at 128; even at 192). A panel of 48 weight rows is widened and transposed 128
 * columns at a time into wt[column][48] (three vectors per column, in L1); then 8 tokens at a time
 * meet it: per column, 3 panel loads and 8 broadcasts of x feed 24 FMAs, so the loop is bound by
 * the FMAs rather than by loads. Each y[t, r] is the in-order FMA sum over k (carried in y between
 * column chunks): the sums ck_gemv_bf16_across gives. */

#define PANEL_ROWS CK_GEMM_ROWS_PANEL
#define PANEL_CHUNK 128
#define PANEL_TOKENS 8

size_t ck_gemm_bf16_rows_scratch(void) { return PANEL_CHUNK * PANEL_ROWS * sizeof(float) + 64; }

/* Rows [r, r + nr) (missing rows zero), columns [k0, k0 + kc) of w into wt[k][48]. */
AVX512 static void pack_rows_panel(const uint16_t *w, size_t cols, size_t r, size_t nr, size_t k0, size_t kc,
                                   float *wt) {
    for (size_t b = 0; b * 16 < nr; b++) {
        for (size_t kk = 0; kk < kc; kk += 16) {
            size_t n = kc - kk < 16 ? kc - kk : 16;
            __mmask16 m = mask16(n);
            __m512 v[16];
            for (size_t i = 0; i < 16; i++) {
                size_t row = 16 * b + i;
                v[i] = row < nr ? widen_bf16_bits(_mm256_maskz_loadu_epi16(m, w + (r + row) * cols + k0 + kk))
                                : _mm512_setzero_ps();
            }
            transpose16(v);
            for (size_t j = 0; j < n; j++) _mm512_store_ps(wt + (kk + j) * PANEL_ROWS + 16 * b, v[j]);
        }
    }
    /* a short panel's missing vectors: zeros, not what the last panel left (never stored, but
     * stale values could be subnormal and slow the FMAs down) */
    for (size_t b = (nr + 15) / 16; b < 3; b++)
        for (size_t k = 0; k < kc; k++) _mm512_store_ps(wt + k * PANEL_ROWS + 16 * b, _mm512_setzero_ps());
}

/* Tokens [0, nt) (nt <= 8; x rows ldx apart) x the panel's rows over kc columns, into y (rows ldy
 * apart, the panel's nr <= 48 columns), starting from zero or from y. */
AVX512 static void panel_tokens(const float *wt, size_t kc, const float *x, size_t ldx, size_t nt, float *y,
                                size_t ldy, size_t nr, int first) {
    const float *xr[PANEL_TOKENS];
    for (size_t t = 0; t < PANEL_TOKENS; t++) xr[t] = x + (t < nt ? t : nt - 1) * ldx;
    __mmask16 m[3];
    for (size_t b = 0; b < 3; b++) m[b] = mask16(nr > 16 * b ? nr - 16 * b : 0);
    __m512 acc[PANEL_TOKENS][3];
    for (size_t t = 0; t < PANEL_TOKENS; t++)
        for (size_t b = 0; b < 3; b++)
            acc[t][b] = first || t >= nt ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[b], y + t * ldy + 16 * b);
    for (size_t k = 0; k < kc; k++) {
        __m512 w0 = _mm512_load_ps(wt + k * PANEL_ROWS), w1 = _mm512_load_ps(wt + k * PANEL_ROWS + 16),
               w2 = _mm512_load_ps(wt + k * PANEL_ROWS + 32);
        for (size_t t = 0; t < PANEL_TOKENS; t++) {
            __m512 xv = _mm512_set1_ps(xr[t][k]);
            acc[t][0] = _mm512_fmadd_ps(w0, xv, acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, xv, acc[t][1]);
            acc[t][2] = _mm512_fmadd_ps(w2, xv, acc[t][2]);
        }
    }
    for (size_t t = 0; t < nt; t++)
        for (size_t b = 0; b < 3; b++) _mm512_mask_storeu_ps(y + t * ldy + 16 * b, m[b], acc[t][b]);
}

void ck_gemm_bf16_rows(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, size_t ntok, float *y,
                       size_t ldy, void *scratch) {
    float *wt = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    for (size_t r = r0; r < r1; r += PANEL_ROWS) {
        size_t nr = r1 - r < PANEL_ROWS ? r1 - r : PANEL_ROWS;
        for (size_t k0 = 0; k0 < cols; k0 += PANEL_CHUNK) {
            size_t kc = cols - k0 < PANEL_CHUNK ? cols - k0 : PANEL_CHUNK;
            pack_rows_panel(w, cols, r, nr, k0, kc, wt);
            for (size_t t = 0; t < ntok; t += PANEL_TOKENS)
                panel_tokens(wt, kc, x + t * cols + k0, cols, ntok - t < PANEL_TOKENS ? ntok - t : PANEL_TOKENS,
                             y + t * ldy + r, ldy, nr, k0 == 0);
        }
    }
}

int ck_bf16_dot_is_faster(void) {
    /* vdpbf16ps doubles the multiply-adds of a 512-bit FMA where FMAs issue one 512-bit op a
     * cycle (AMD Zen 4/5: measured 107 against 57 GFLOP/s a core); on Intel cores with two FMA
     * ports it does not. */
    __builtin_cpu_init();
    return __builtin_cpu_is("amd");
}

/* Rows [r0, r1) in blocks of DP_ROWS, each against the tokens in groups of DP_TOKENS. */
void ck_gemv_bf16_dp(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint16_t *x, size_t ldx, size_t ntok,
                     float *y, size_t ldy) {
    for (size_t r = r0; r < r1; r += DP_ROWS) {
        size_t nr = r1 - r < DP_ROWS ? r1 - r : DP_ROWS;
        for (size_t t = 0; t < ntok; t += DP_TOKENS)
            dp_block(w, cols, r, nr, x, ldx, t, ntok - t < DP_TOKENS ? ntok - t : DP_TOKENS, y, ldy);
    }
}

int ck_has_bf16_dot(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
}

void ck_gemm_bf16(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint16_t *x, size_t ntok,
                  float *y, size_t ldy, void *scratch) {
    gemm_bf16_512(w, cols, r0, r1, x, ntok, y, ldy, scratch);
}

void ck_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], 4);
        if ((bits & 0x7f800000) == 0x7f800000 && (bits & 0x7fffff)) {
            dst[i] = (uint16_t)((bits >> 16) | 0x40); /* quiet NaN */
        } else {
            dst[i] = (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
        }
    }
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

void ck_gemv_bf16_prepare(const float *x, float *xp, size_t cols) {
    if (detect() == ISA_AVX512) {
        prepare_512(x, xp, cols);
    } else {
        memcpy(xp, x, cols * sizeof(float));
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

float ck_read_sum(const void *data, size_t bytes) {
    const float *p = (const float *)data;
    size_t n = bytes / 4;
    switch (detect()) {
    case ISA_AVX512: return read_sum_512(p, n);
    case ISA_AVX2: return read_sum_256(p, n);
    default: {
        float s = 0;
        for (size_t i = 0; i < n; i++) s += p[i];
        return s;
    }
    }
}

void ck_tokens_across(const float *x, size_t ldx, size_t ntok, size_t cols, float *xt) {
    if (detect() == ISA_AVX512) return tokens_across_512(x, ldx, ntok, cols, xt);
    size_t width = ck_tokens_across_width(ntok);
    for (size_t k = 0; k < cols; k++) {
        float *o = xt + k * width;
        for (size_t t = 0; t < ntok; t++) o[t] = x[t * ldx + k];
        for (size_t t = ntok; t < width; t++) o[t] = 0;
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

/* bf16 prefill GEMM on AMX tiles (Intel Sapphire Rapids and later).
 *
 * y[t, r] = sum_k W[r, k] * x[t, k], computed as Yᵀ = W · Xᵀ so the weights are read as stored:
 * an A tile is 16 weight rows × 32 bf16 columns loaded straight from row-major W; a B tile is
 * 16 column pairs × 16 tokens of x in the pair-interleaved ("VNNI") layout that ck_amx_pack_x
 * writes once per product; a C tile is 16 rows × 16 tokens of f32 sums. Eight tiles hold one
 * 32-row × 32-token block: C0..C3, A4/A5 (rows 0-15, 16-31), B6/B7 (tokens 0-15, 16-31); each
 * 32-column step is 4 tile loads and 4 tdpbf16ps (16·16·32 multiply-adds each). C is written
 * transposed into y (16 gathers of 16 sums per tile).
 *
 * Loop order per thread: groups of AMX_GROUP 32-row blocks meet each 32-token block in turn, so
 * the group's weights (AMX_GROUP · 32 rows · cols bf16) and the token block's activations
 * (32 · cols bf16) stay in L2 while they are reused.
 */
#include <immintrin.h>
#include <cpuid.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CKernels.h"

#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))
#define PACK __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX_ROWS 32
#define AMX_TOKENS 32
#define AMX_GROUP 4

/* Linux: a process must ask for the tile data state before its first tile instruction. */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int ck_has_amx_bf16(void) {
    static int cached = -1;
    if (cached < 0) {
        unsigned a, b, c, d;
        /* CPUID.(7,0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE; the tile state needs AVX512-BF16's
         * conversion for ck_amx_pack_x too (every AMX CPU has it). */
        int cpu = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22)) && (d & (1u << 24)) &&
                  ck_has_bf16_dot();
        cached = cpu && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }
    return cached;
}

size_t ck_amx_tokens_stride(size_t ntok) { return (ntok + AMX_TOKENS - 1) / AMX_TOKENS * AMX_TOKENS; }

/* xp[p * ldp + t] = bf16(x[t, 2p]) | bf16(x[t, 2p + 1]) << 16 for pairs p in [p0, p1), tokens
 * t < ldp (zero for t >= ntok). Pairs are split over threads; each thread's writes to one xp row
 * fill its cache lines over consecutive tokens. Rounding is to nearest even (vcvtne2ps2bf16). */
PACK void ck_amx_pack_x(const float *x, size_t ntok, size_t cols, size_t p0, size_t p1, uint32_t *xp,
                        size_t ldp) {
    uint32_t lanes[16] __attribute__((aligned(64)));
    for (size_t t = 0; t < ldp; t++) {
        if (t >= ntok) {
            for (size_t p = p0; p < p1; p++) xp[p * ldp + t] = 0;
            continue;
        }
        const float *row = x + t * cols;
        for (size_t p = p0; p < p1; p += 16) {
            size_t n = p1 - p < 16 ? p1 - p : 16;
            __mmask16 lo = (__mmask16)(n >= 8 ? 0xffff : (1u << (2 * n)) - 1);
            __mmask16 hi = (__mmask16)(n >= 16 ? 0xffff : n > 8 ? (1u << (2 * n - 16)) - 1 : 0);
            __m512 a = _mm512_maskz_loadu_ps(lo, row + 2 * p);
            __m512 b = _mm512_maskz_loadu_ps(hi, row + 2 * p + 16);
            _mm512_store_si512(lanes, (__m512i)_mm512_cvtne2ps_pbh(b, a));
            for (size_t i = 0; i < n; i++) xp[(p + i) * ldp + t] = lanes[i];
        }
    }
}

struct tile_config {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* Every tile 16 rows × 64 bytes: A (16 rows × 32 bf16), B (16 pairs × 16 tokens), C (16 × 16 f32). */
AMX static void configure_tiles(void) {
    struct tile_config config __attribute__((aligned(64)));
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int i = 0; i < 8; i++) {
        config.colsb[i] = 64;
        config.rows[i] = 16;
    }
    _tile_loadconfig(&config);
}

/* One block: 32 rows of a (row stride cols; rows past nrows may hold anything readable) against
 * the 32 tokens of xp starting at its first column; writes y[j * ldy + i] for i < nrows, j < ntok. */
AMX static void amx_block(const uint16_t *a, size_t cols, const uint32_t *xp, size_t ldp, size_t nrows, size_t ntok,
                          float *y, size_t ldy) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const char *a0 = (const char *)a, *a1 = (const char *)(a + 16 * cols), *b = (const char *)xp;
    size_t astride = cols * 2, bstride = ldp * 4;
    for (size_t k = 0; k < cols; k += 32) {
        const char *bk = b + (k / 2) * bstride;
        _tile_loadd(4, a0 + 2 * k, astride);
        _tile_loadd(6, bk, bstride);
        _tile_loadd(7, bk + 64, bstride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a1 + 2 * k, astride);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    /* c[q][i * 16 + j]: rows 16·(q / 2) + i, tokens 16·(q % 2) + j. */
    float c[4][256] __attribute__((aligned(64)));
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
    const __m512i column = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    __mmask16 top = (__mmask16)(nrows >= 16 ? 0xffff : (1u << nrows) - 1);
    __mmask16 bottom = (__mmask16)(nrows >= 32 ? 0xffff : nrows > 16 ? (1u << (nrows - 16)) - 1 : 0);
    for (size_t j = 0; j < ntok; j++) {
        size_t half = j / 16, jj = j % 16;
        _mm512_mask_storeu_ps(y + j * ldy, top, _mm512_i32gather_ps(column, c[half] + jj, 4));
        if (bottom) _mm512_mask_storeu_ps(y + j * ldy + 16, bottom, _mm512_i32gather_ps(column, c[2 + half] + jj, 4));
    }
}

AMX void ck_gemm_bf16_amx(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint32_t *xp, size_t ldp,
                          size_t ntok, float *y, size_t ldy, void *scratch) {
    configure_tiles();
    size_t full = r0 + (r1 - r0) / AMX_ROWS * AMX_ROWS;
    for (size_t group = r0; group < full; group += AMX_ROWS * AMX_GROUP) {
        size_t end = group + AMX_ROWS * AMX_GROUP < full ? group + AMX_ROWS * AMX_GROUP : full;
        for (size_t t = 0; t < ntok; t += AMX_TOKENS) {
            size_t m = ntok - t < AMX_TOKENS ? ntok - t : AMX_TOKENS;
            for (size_t r = group; r < end; r += AMX_ROWS)
                amx_block(w + r * cols, cols, xp + t, ldp, AMX_ROWS, m, y + t * ldy + r, ldy);
        }
    }
    if (full < r1) {
        /* The last rows of the matrix, zero-padded to a whole block in scratch (32 · cols bf16). */
        size_t n = r1 - full;
        uint16_t *rows = (uint16_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        memcpy(rows, w + full * cols, n * cols * 2);
        memset(rows + n * cols, 0, (AMX_ROWS - n) * cols * 2);
        for (size_t t = 0; t < ntok; t += AMX_TOKENS) {
            size_t m = ntok - t < AMX_TOKENS ? ntok - t : AMX_TOKENS;
            amx_block(rows, cols, xp + t, ldp, n, m, y + t * ldy + full, ldy);
        }
    }
    _tile_release();
}

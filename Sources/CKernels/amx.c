/* bf16 prefill GEMM on AMX tiles (Intel Sapphire Rapids and later).
 *
 * y[t, r] = sum_k W[r, k] * x[t, k], computed as Yᵀ = W · Xᵀ: an A tile is 16 weight rows × 32 bf16
 * columns; a B tile is 16 column pairs × 16 tokens of x with each pair in one 32-bit word (the
 * "VNNI" layout); a C tile is 16 rows × 16 tokens of f32 sums. Eight tiles hold one 32-row ×
 * 32-token block: C0..C3, A4/A5 (rows 0-15, 16-31), B6/B7 (tokens 0-15, 16-31); each 32-column
 * step is 4 tile loads and 4 tdpbf16ps (16·16·32 multiply-adds each). C is written transposed
 * into y (16 gathers of 16 sums per tile).
 *
 * A decode batch (at most one 32-token block) meets each weight block once, so its A tiles load
 * straight from row-major W. Prefill reuses each block for many token blocks, and every tile
 * load there reads contiguous memory (on the 16-core host, loading A straight from row-major W,
 * 16 rows 4 KiB apart, ran at 110-120 GFLOP/s a core):
 * - x is packed once per product (ck_amx_pack_x) into 32-token blocks, [block][pair][32 tokens]
 *   words, so a step's two B tiles are 16 rows of 128 bytes;
 * - each thread copies a group of its 32-row weight blocks into scratch as [block][step][2 tiles]
 *   [16 rows][64 bytes] (one read of the weights), then every token block meets the whole group:
 *   the group (at most AMX_GROUP_BYTES) and a token block's activations (64 bytes a column) stay
 *   in L2 while they are reused.
 */
#include <immintrin.h>
#include <cpuid.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CKernels.h"
#include "lanes.h"

#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))
#define PACK __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX_ROWS 32
#define AMX_TOKENS 32
#define AMX_GROUP_BYTES (512u << 10)

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

/* 32-row blocks per group: as many as fit AMX_GROUP_BYTES, at least one. */
static size_t group_blocks(size_t cols) {
    size_t blocks = AMX_GROUP_BYTES / (AMX_ROWS * cols * 2);
    return blocks ? blocks : 1;
}

size_t ck_amx_scratch(size_t cols) { return group_blocks(cols) * AMX_ROWS * cols * 2 + 64; }

size_t ck_amx_packed_words(size_t ntok, size_t cols) {
    return (ntok + AMX_TOKENS - 1) / AMX_TOKENS * AMX_TOKENS * (cols / 2);
}

/* Pairs [p0, p1) of every token: xp[(t / 32) * pairs * 32 + p * 32 + t % 32] holds x[t, 2p] and
 * x[t, 2p + 1] rounded to bf16 (to nearest even: vcvtne2ps2bf16); tokens past ntok in the last
 * block are zero. 16 pairs of a token are converted at once and scattered 128 bytes apart. */
PACK void ck_amx_pack_x(const float *x, size_t ntok, size_t cols, size_t p0, size_t p1, uint32_t *xp) {
    size_t pairs = cols / 2, padded = (ntok + AMX_TOKENS - 1) / AMX_TOKENS * AMX_TOKENS;
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(AMX_TOKENS));
    for (size_t t = 0; t < padded; t++) {
        uint32_t *block = xp + (t / AMX_TOKENS) * pairs * AMX_TOKENS + t % AMX_TOKENS;
        const float *row = x + t * cols;
        for (size_t p = p0; p < p1; p += 16) {
            size_t n = p1 - p < 16 ? p1 - p : 16;
            __mmask16 lanes = mask16(n);
            __m512i words = _mm512_setzero_si512();
            if (t < ntok) {
                __mmask16 lo = mask16(2 * n), hi = mask16(n > 8 ? 2 * n - 16 : 0);
                __m512 a = _mm512_maskz_loadu_ps(lo, row + 2 * p);
                __m512 b = _mm512_maskz_loadu_ps(hi, row + 2 * p + 16);
                words = (__m512i)_mm512_cvtne2ps_pbh(b, a);
            }
            _mm512_mask_i32scatter_epi32(block + p * AMX_TOKENS, lanes, rows, words, 4);
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

/* Rows [r, r + n) of W (n <= 32; missing rows zero) into one packed block: [step][2 tiles][16
 * rows][32 bf16]. */
AMX static void pack_block(const uint16_t *w, size_t cols, size_t r, size_t n, uint16_t *block) {
    for (size_t i = 0; i < AMX_ROWS; i++) {
        uint16_t *dst = block + (i / 16) * 512 + (i % 16) * 32;
        if (i >= n) {
            for (size_t k = 0; k < cols; k += 32) _mm512_store_si512(dst + k * 32, _mm512_setzero_si512());
            continue;
        }
        const uint16_t *src = w + (r + i) * cols;
        for (size_t k = 0; k < cols; k += 32) _mm512_store_si512(dst + k * 32, _mm512_loadu_si512(src + k));
    }
}

/* A 32-row block of weights against one 32-token block; writes y[j * ldy + i] for i < nrows,
 * j < ntok. The block's top and bottom 16 rows are A tiles at `top` and `bottom`, `stride` bytes
 * a row, the next 32 columns `step` elements on: a packed block (pack_block: stride 64, step
 * 1024) or rows of W itself (stride cols * 2, step 32). */
AMX static void amx_block(const uint16_t *top, const uint16_t *bottom, size_t stride, size_t step, size_t cols,
                          const uint32_t *b, size_t nrows, size_t ntok, float *y, size_t ldy) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (size_t k = 0; k < cols; k += 32) {
        size_t a = k / 32 * step;
        const uint32_t *bk = b + k / 2 * AMX_TOKENS;
        _tile_loadd(4, top + a, stride);
        _tile_loadd(6, bk, 128);
        _tile_loadd(7, bk + 16, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, bottom + a, stride);
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
    __mmask16 top_rows = mask16(nrows), bottom_rows = mask16(nrows > 16 ? nrows - 16 : 0);
    for (size_t j = 0; j < ntok; j++) {
        size_t half = j / 16, jj = j % 16;
        _mm512_mask_storeu_ps(y + j * ldy, top_rows, _mm512_i32gather_ps(column, c[half] + jj, 4));
        if (bottom_rows)
            _mm512_mask_storeu_ps(y + j * ldy + 16, bottom_rows, _mm512_i32gather_ps(column, c[2 + half] + jj, 4));
    }
}

/* A packed block (pack_block's layout). */
AMX static void packed_block(const uint16_t *a, size_t cols, const uint32_t *b, size_t nrows, size_t ntok, float *y,
                             size_t ldy) {
    amx_block(a, a + 512, 64, 1024, cols, b, nrows, ntok, y, ldy);
}

/* Up to one token block (a decode batch) meets each weight block once: its whole 32-row blocks
 * load their A tiles straight from W (packing would read and write the weights once more for a
 * single use); a short last block is packed, zero-padded, since W may end inside it. */
AMX static void gemm_one_token_block(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint32_t *xp,
                                     size_t ntok, float *y, size_t ldy, uint16_t *packed) {
    for (size_t r = r0; r < r1; r += AMX_ROWS) {
        if (r1 - r >= AMX_ROWS) {
            const uint16_t *top = w + r * cols;
            amx_block(top, top + 16 * cols, cols * 2, 32, cols, xp, AMX_ROWS, ntok, y + r, ldy);
        } else {
            pack_block(w, cols, r, r1 - r, packed);
            packed_block(packed, cols, xp, r1 - r, ntok, y + r, ldy);
        }
    }
}

/* More than one token block (prefill): each thread packs a group of its weight blocks once, then
 * every token block meets the whole group. */
AMX static void gemm_token_blocks(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint32_t *xp,
                                  size_t ntok, float *y, size_t ldy, uint16_t *packed) {
    size_t group = group_blocks(cols) * AMX_ROWS, block_elements = AMX_ROWS * cols, pairs = cols / 2;
    for (size_t g = r0; g < r1; g += group) {
        size_t end = g + group < r1 ? g + group : r1;
        for (size_t r = g; r < end; r += AMX_ROWS)
            pack_block(w, cols, r, end - r < AMX_ROWS ? end - r : AMX_ROWS, packed + (r - g) / AMX_ROWS * block_elements);
        for (size_t t = 0; t < ntok; t += AMX_TOKENS) {
            size_t m = ntok - t < AMX_TOKENS ? ntok - t : AMX_TOKENS;
            for (size_t r = g; r < end; r += AMX_ROWS)
                packed_block(packed + (r - g) / AMX_ROWS * block_elements, cols, xp + t * pairs,
                             end - r < AMX_ROWS ? end - r : AMX_ROWS, m, y + t * ldy + r, ldy);
        }
    }
}

AMX void ck_gemm_bf16_amx(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint32_t *xp, size_t ntok,
                          float *y, size_t ldy, void *scratch) {
    configure_tiles();
    uint16_t *packed = (uint16_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    if (ntok <= AMX_TOKENS)
        gemm_one_token_block(w, cols, r0, r1, xp, ntok, y, ldy, packed);
    else
        gemm_token_blocks(w, cols, r0, r1, xp, ntok, y, ldy, packed);
    _tile_release();
}

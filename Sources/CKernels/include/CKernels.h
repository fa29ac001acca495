#ifndef CKERNELS_H
#define CKERNELS_H
/*
 * Hot inner loops that Swift cannot reach at the same speed (measured on a 2-vCPU Zen 4: Swift
 * widened bf16 through out-of-line generic calls at 7.1 GB/s against 12.9 GB/s here; see
 * docs/architecture.md, "Kernels").
 * Everything else lives in Swift. Each function picks AVX-512, AVX2 or scalar code at run time.
 */
#include <stddef.h>
#include <stdint.h>
#include "affinity.h"

/// Rearranges one activation row x[cols] into xp[cols], the order ck_gemv_bf16 reads it in
/// (the AVX-512 path widens bf16 by interleaving with zeros, which permutes lanes).
void ck_gemv_bf16_prepare(const float *x, float *xp, size_t cols);

/// y[t*ldy + r] = sum_k W[r, k] * x_t[k] for rows r in [r0, r1) and tokens t < ntok, where xp
/// holds each token's row prepared by ck_gemv_bf16_prepare (row t at xp + t*ldx).
/// W is row-major [rows, cols] in bfloat16 (raw bits); x and y are float32.
void ck_gemv_bf16(const uint16_t *w, size_t cols, size_t r0, size_t r1,
                  const float *xp, size_t ldx, size_t ntok, float *y, size_t ldy);

/// Same contract as ck_gemv_bf16 with IEEE half-precision weights.
void ck_gemv_f16(const uint16_t *w, size_t cols, size_t r0, size_t r1,
                 const float *x, size_t ldx, size_t ntok, float *y, size_t ldy);

/// Whether this CPU has AVX512-BF16 (vdpbf16ps), which ck_gemm_bf16 needs.
int ck_has_bf16_dot(void);

/// Rounds n floats to bfloat16 (round to nearest even), written as raw bits.
void ck_f32_to_bf16(const float *src, uint16_t *dst, size_t n);

/// y[t*ldy + r] = sum_k W[r, k] * x[t, k] for rows r in [r0, r1) and tokens t < ntok, both
/// operands bfloat16 (x rows ldx apart) and float32 accumulation, reading W as stored: for decode
/// batches (about 9 to 64 tokens), where packing panels as ck_gemm_bf16 does costs more than it
/// saves. Needs AVX512-BF16 (ck_has_bf16_dot).
void ck_gemv_bf16_dp(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint16_t *x, size_t ldx,
                     size_t ntok, float *y, size_t ldy);

/// Floats per column of activations laid out by ck_tokens_across: ntok rounded up to 16.
size_t ck_tokens_across_width(size_t ntok);

/// x [ntok, cols] (rows ldx apart) with tokens across: xt[k * width + t], width =
/// ck_tokens_across_width(ntok), zero past ntok.
void ck_tokens_across(const float *x, size_t ldx, size_t ntok, size_t cols, float *xt);

/// The contract of ck_gemv_bf16_dp with f32 activations laid out by ck_tokens_across and f32 FMAs
/// (each y[t, r] the sum over k in order, whatever the batch). Needs AVX-512.
void ck_gemv_bf16_across(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *xt, size_t ntok,
                         float *y, size_t ldy);

/// y[t * ldy + r] = sum over k of w[r, k] * x[t, k] for rows [r0, r1), tokens [0, ntok), x rows
/// `cols` apart: f32 FMAs, rows across the lanes (for 65-128 tokens); each sum in order over k, as
/// ck_gemv_bf16_across gives. `scratch`: ck_gemm_bf16_rows_scratch() bytes. Needs AVX-512.
void ck_gemm_bf16_rows(const uint16_t *w, size_t cols, size_t r0, size_t r1, const float *x, size_t ntok, float *y,
                       size_t ldy, void *scratch);
/// Rows of a ck_gemm_bf16_rows panel: row ranges split at multiples of it waste no work.
#define CK_GEMM_ROWS_PANEL 48
size_t ck_gemm_bf16_rows_scratch(void);

/// Whether vdpbf16ps outruns 512-bit f32 FMAs on this CPU (AMD), so decode batches use ck_gemv_bf16_dp.
int ck_bf16_dot_is_faster(void);

/// Bytes of scratch ck_gemm_bf16 needs per call for a K-wide matrix.
size_t ck_gemm_bf16_scratch(size_t cols);

/// y[t*ldy + r] = sum_k W[r, k] * x[t, k] for rows r in [r0, r1) and all t < ntok, with both
/// operands in bfloat16 (x is [ntok, cols] bf16, row stride cols) and float32 accumulation
/// (AVX512-BF16 dot products). `scratch` holds ck_gemm_bf16_scratch(cols) bytes, one per thread.
void ck_gemm_bf16(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint16_t *x,
                  size_t ntok, float *y, size_t ldy, void *scratch);

/// Whether this CPU has AMX tiles with bf16 (Intel Sapphire Rapids and later) and the kernel
/// granted this process the tile state: ck_gemm_bf16_amx and ck_amx_pack_x may run.
int ck_has_amx_bf16(void);

/// Words of the AMX activation layout for [ntok, cols] activations: whole 32-token blocks.
size_t ck_amx_packed_words(size_t ntok, size_t cols);

/// The AMX activation layout, for column pairs p in [p0, p1) (split over threads): word
/// (t / 32) * (cols / 2) * 32 + p * 32 + t % 32 holds x[t, 2p] and x[t, 2p+1] rounded to bf16
/// (low, high half); tokens past ntok in the last block are zero. x is [ntok, cols] float32,
/// cols even; xp holds ck_amx_packed_words(ntok, cols) words, 64-byte aligned.
void ck_amx_pack_x(const float *x, size_t ntok, size_t cols, size_t p0, size_t p1, uint32_t *xp);

/// Bytes of scratch ck_gemm_bf16_amx needs per thread for a K-wide matrix.
size_t ck_amx_scratch(size_t cols);

/// ck_gemm_bf16's product on AMX tiles: y[t*ldy + r] = sum_k W[r, k] * x[t, k] for rows
/// [r0, r1), x packed by ck_amx_pack_x; cols a multiple of 32. `scratch` holds
/// ck_amx_scratch(cols) bytes, one per thread. Needs ck_has_amx_bf16().
void ck_gemm_bf16_amx(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint32_t *xp,
                      size_t ntok, float *y, size_t ldy, void *scratch);

/// dst[i] = float(src[i]) for n bfloat16 values.
void ck_bf16_to_f32(const uint16_t *src, float *dst, size_t n);

/// dst[i] = float(src[i]) for n half-precision values.
void ck_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/// Reads `bytes` bytes (vector loads, summed as floats so the loads cannot be dropped): the
/// machine's read-bandwidth probe for benchmark reports.
float ck_read_sum(const void *data, size_t bytes);

/// Acquire load / release store of a 64-bit flag in memory shared between processes (MPI
/// shared windows). Swift's atomics cannot be placed on raw shared memory, so these wrap the
/// C builtins.
static inline uint64_t ck_load_acquire(const uint64_t *flag) {
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

static inline void ck_store_release(uint64_t *flag, uint64_t value) {
    __atomic_store_n(flag, value, __ATOMIC_RELEASE);
}

/// A spin-wait hint for the thread pool's polling loops.
static inline void ck_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// Name of the widest kernel set this CPU runs ("avx512", "avx2" or "scalar").
const char *ck_isa(void);

/* ---- quantized weights (quant.c, quant_avx2.c, quant_avx512.c) -------------------------------
 * Layouts, row-major [rows, cols] with blocks along a row:
 *   int8   w int8 [rows, cols];  scales f16 [rows, cols/32];  w = q * s
 *   int4   w uint8 [rows, cols/2], column 2j in the LOW nibble of byte j, 2j+1 in the high one;
 *          code c in 0...15 means c - 8;  scales f16 [rows, cols/32];  w = (c - 8) * s
 *   fp8    w E4M3FN bytes [rows, cols];  one f32 per-tensor scale;  w = e4m3(q) * scale
 *   nvfp4  w uint8 [rows, cols/2], two E2M1 codes per byte (column 2j in the low nibble; the
 *          order is one macro in quant_internal.h);  scales E4M3 [rows, cols/16];  f32 scale2;
 *          w = e2m1(c) * (e4m3(s) * scale2)
 * E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits, no infinities, 0x7F/0xFF are NaN
 * (dequantized to NaN). E2M1: bit 3 the sign, magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}.
 * cols must be a multiple of 32 for int8/int4 (16 for nvfp4; any for fp8).
 * All functions are thread-safe; threads split the rows [r0, r1).
 *
 * Exact path (f32 activations): y[t*ldy + r] = sum_k w[r, k] * x_t[k] for rows r in [r0, r1)
 * and tokens t < ntok, x_t = x + t*ldx; each weight is dequantized exactly as above (in f32)
 * and multiplied with the f32 activation, accumulated in f32 (FP8 with AVX-512: the f32 sum of
 * e4m3(q) * x is multiplied by the per-tensor scale once; within 1e-5 of the same sum in double). */
void ck_gemv_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                const float *x, size_t ldx, size_t ntok, float *y, size_t ldy);
void ck_gemv_q4(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                const float *x, size_t ldx, size_t ntok, float *y, size_t ldy);
void ck_gemv_fp8(const uint8_t *w, float scale, size_t cols, size_t r0, size_t r1,
                 const float *x, size_t ldx, size_t ntok, float *y, size_t ldy);
void ck_gemv_nvfp4(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols, size_t r0,
                   size_t r1, const float *x, size_t ldx, size_t ntok, float *y, size_t ldy);

/// Dequantizes rows [r0, r1) to f32: out is [(r1 - r0), cols], row-major, bit-identical to the
/// weights the exact path multiplies.
void ck_dequant_rows_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                        float *out);
void ck_dequant_rows_q4(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                        float *out);
void ck_dequant_rows_fp8(const uint8_t *w, float scale, size_t cols, size_t r0, size_t r1, float *out);
void ck_dequant_rows_nvfp4(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols,
                           size_t r0, size_t r1, float *out);

/// The same rows rounded to bfloat16 (nearest even, as ck_f32_to_bf16), raw bits, for the
/// bf16 prefill GEMM (ck_gemm_bf16 takes rows of this layout).
void ck_dequant_rows_q8_bf16(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0,
                             size_t r1, uint16_t *out);
void ck_dequant_rows_q4_bf16(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0,
                             size_t r1, uint16_t *out);
void ck_dequant_rows_fp8_bf16(const uint8_t *w, float scale, size_t cols, size_t r0, size_t r1,
                              uint16_t *out);
void ck_dequant_rows_nvfp4_bf16(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols,
                                size_t r0, size_t r1, uint16_t *out);

/* Fast path for decode (int8 activations, integer dot products: AVX512-VNNI vpdpbusd, else
 * AVX2 vpmaddubsw, else scalar). Each token's activations are quantized per block of 32
 * columns, like llama.cpp's Q8_0: d = max|x| / 127, q = round-to-nearest-even(x / d) as
 * x * (1/d) in f32. cols must be a multiple of 32. The package for one token is
 * ck_q8_activation_bytes(cols) bytes (a multiple of 64; align it to 64 bytes for speed) and
 * holds q in two column orders, the block scales and per-8-column sums (quant_internal.h). */
size_t ck_q8_activation_bytes(size_t cols);
void ck_q8_quantize_activation(const float *x, size_t cols, void *xq);
/// Where the package's f32 block scales d[cols/32] start; its first cols bytes are q (int8) in
/// column order. The other sections are the kernels' own.
size_t ck_q8_activation_scales_offset(size_t cols);

/// y[t*ldy + r] = sum_b scale_w[r, b] * d_t[b] * sum_{k in block b} wq[r, k] * q_t[k], for
/// rows r in [r0, r1) and tokens t < ntok, where token t's package is at xq + t*ldxq_bytes.
/// Integer products are exact; the per-block sums are scaled and accumulated in f32.
void ck_gemv_q8_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                   const void *xq, size_t ldxq_bytes, size_t ntok, float *y, size_t ldy);
void ck_gemv_q4_q8(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1,
                   const void *xq, size_t ldxq_bytes, size_t ntok, float *y, size_t ldy);
/// NVFP4 weights against int8 activations: 2*e2m1 is an integer in [-12, 12], so the products
/// are exact integers too; each 16-column sum is scaled by e4m3(s)/2 * scale2 * d.
void ck_gemv_nvfp4_q8(const uint8_t *w, const uint8_t *scales_e4m3, float scale2, size_t cols, size_t r0,
                      size_t r1, const void *xq, size_t ldxq_bytes, size_t ntok, float *y, size_t ldy);

/* ---- int8 prefill GEMM (quant_gemm.c; AVX512-VNNI only) --------------------------------------
 * y[t*ldy + r] = sum over blocks b of 32 inputs of ws[r,b] * d[t,b] * (integer dot of the block),
 * for int8 and int4 weights (layouts above) against activations quantized per block of 32 as
 * ck_q8_quantize_activation does (d = amax / 127, q = nearest-even(x / d)), in a layout of
 * token tiles of its own. Use only where ck_q8_gemm_available() (it reads the calling thread's
 * ISA cap). */
int ck_q8_gemm_available(void);
/// Tokens per activation tile.
size_t ck_q8_gemm_tile_tokens(void);
/// Bytes of the quantized activations of ntok tokens of cols inputs (cols a multiple of 32).
size_t ck_q8_gemm_act_bytes(size_t ntok, size_t cols);
/// Quantizes tiles [tile0, tile1) of the ntok tokens of x (ldx floats apart) into xq, for
/// weights of `bits` 8 or 4 bits. Tiles are independent: threads may share the work.
void ck_q8_gemm_quantize(const float *x, size_t ldx, size_t ntok, size_t cols, int bits, size_t tile0,
                         size_t tile1, void *xq);
/// Bytes of per-thread scratch (one packed 32-row weight panel) for cols inputs.
size_t ck_q8_gemm_scratch(size_t cols);
/// Rows [r0, r1) against all ntok tokens of xq (made by ck_q8_gemm_quantize with bits 8 or 4).
void ck_gemm_q8_q8(const int8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const void *xq,
                   size_t ntok, float *y, size_t ldy, void *scratch);
void ck_gemm_q4_q8(const uint8_t *w, const uint16_t *scales_f16, size_t cols, size_t r0, size_t r1, const void *xq,
                   size_t ntok, float *y, size_t ldy, void *scratch);

/// One token of the Mamba-2 selective scan for one head (ssm.c): for each row p < P of the
/// state S [P, N], S[p] = decay * S[p] + (dt * x[p]) * B, y[p] = S[p] . C + D * x[p].
/// Needs AVX-512 and N a multiple of 16.
void ck_ssm_step(float *S, size_t P, size_t N, float decay, float dt, const float *x, const float *B,
                 const float *C, float D, float *y);

/// One decode query against a KV cache (AVX-512; attention.c): scores[s] = scale * (q . keys[s])
/// for s < length, key rows `stride` floats apart, dh floats each; returns the largest score.
float ck_attention_scores(const float *q, const float *keys, size_t stride, size_t length, size_t dh, float scale,
                          float *scores);

/// out[v] = inverse * sum over s < length of weights[s] * values[s * stride + v], v < dh.
void ck_attention_values(const float *weights, const float *values, size_t stride, size_t length, size_t dh,
                         float inverse, float *out);

/* Instruction sets of the quantized kernels, in order. The exact path and the dequantizers use
 * AVX-512 from level 3; the int8 path needs level 4 (AVX512-VNNI) for its AVX-512 code and runs
 * its AVX2 code at levels 2 and 3. */
#define CK_QUANT_SCALAR 1
#define CK_QUANT_AVX2 2
#define CK_QUANT_AVX512 3
#define CK_QUANT_AVX512_VNNI 4

/// The level the quantized kernels run at on the calling thread: what the CPU has, lowered by
/// ck_quant_set_isa_cap.
int ck_quant_isa_level(void);

/// Test hook: caps the level for the calling thread only (0 removes the cap) and returns the
/// level now in effect, so tests can run every code path side by side.
int ck_quant_set_isa_cap(int cap);

/// Name of the calling thread's level: "avx512vnni", "avx512", "avx2" or "scalar".
const char *ck_quant_isa(void);

#endif

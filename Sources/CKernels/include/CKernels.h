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

/// Bytes of scratch ck_gemm_bf16 needs per call for a K-wide matrix.
size_t ck_gemm_bf16_scratch(size_t cols);

/// y[t*ldy + r] = sum_k W[r, k] * x[t, k] for rows r in [r0, r1) and all t < ntok, with both
/// operands in bfloat16 (x is [ntok, cols] bf16, row stride cols) and float32 accumulation
/// (AVX512-BF16 dot products). `scratch` holds ck_gemm_bf16_scratch(cols) bytes, one per thread.
void ck_gemm_bf16(const uint16_t *w, size_t cols, size_t r0, size_t r1, const uint16_t *x,
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

#endif

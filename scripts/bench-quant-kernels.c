/*
 * Streaming speed of the quantized-weight GEMV kernels against the bf16 kernel and the read
 * bandwidth probe, on a decode-shaped matrix set: pairs of [8192, 2048] and [2048, 8192]
 * matrices, ~700 MB in int8 by default (the bf16 copy is twice that).
 *
 *   clang -O3 -pthread -I Sources/CKernels/include scripts/bench-quant-kernels.c \
 *       Sources/CKernels/kernels.c Sources/CKernels/quant*.c -lm -o /tmp/bench-quant
 *   /tmp/bench-quant [--pairs 20] [--threads 1,2] [--tokens 1] [--passes 7] [--only q8_q8,...]
 *                    [--isa 2]   (cap the quantized kernels: 1 scalar, 2 AVX2, 3 AVX-512, 4 VNNI)
 *
 * Each thread takes a contiguous share of every matrix's rows (no barrier between matrices,
 * one at the end of a pass), so the figure is the kernels' streaming rate, not the engine's
 * synchronisation. Kernels are interleaved pass by pass, so outside load (a shared machine)
 * hits them alike; each line gives the median and best pass. GB/s counts the bytes the kernel
 * must read per token step: quantized weights plus their block scales.
 */
#define _GNU_SOURCE
#include "CKernels.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum kernel { K_PROBE, K_BF16, K_Q8, K_Q8Q8, K_Q4, K_Q4Q8, K_FP8, K_NVFP4, K_NVFP4Q8, K_COUNT };
static const char *names[K_COUNT] = {"probe", "bf16", "q8", "q8_q8", "q4", "q4_q8", "fp8", "nvfp4", "nvfp4_q8"};

#define MAX_MATS 256
#define MAX_TOK 8

static size_t nmat, rows_of[MAX_MATS], cols_of[MAX_MATS];
static size_t off_q8[MAX_MATS], off_q4[MAX_MATS], off_s16[MAX_MATS], off_s8[MAX_MATS];
static uint8_t *q8, *q4, *s8;
static uint16_t *bf16, *s16;
static float *x, *xprep, *y;
static uint8_t *xq;
static size_t xq_stride, max_cols, max_rows;

static int nthreads, ntok, current, isa_cap;
static pthread_barrier_t start_gate, end_gate;
static volatile float sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill(uint8_t *p, size_t n) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = next();
        memcpy(p + i, &v, 8);
    }
}

static size_t bytes_of(enum kernel k) {
    size_t total = 0;
    for (size_t m = 0; m < nmat; m++) {
        size_t n = rows_of[m] * cols_of[m];
        switch (k) {
        case K_PROBE: total += n; break; /* reads the int8 set */
        case K_BF16: total += 2 * n; break;
        case K_Q8: case K_Q8Q8: total += n + n / 32 * 2; break;
        case K_Q4: case K_Q4Q8: total += n / 2 + n / 32 * 2; break;
        case K_FP8: total += n; break;
        case K_NVFP4: case K_NVFP4Q8: total += n / 2 + n / 16; break;
        default: break;
        }
    }
    return total;
}

static void run_share(int kernel, int id) {
    float acc = 0;
    for (size_t m = 0; m < nmat; m++) {
        size_t rows = rows_of[m], cols = cols_of[m];
        size_t r0 = rows * id / nthreads, r1 = rows * (id + 1) / nthreads;
        const int8_t *w8 = (const int8_t *)(q8 + off_q8[m]);
        const uint8_t *w4 = q4 + off_q4[m];
        const uint16_t *sc16 = s16 + off_s16[m];
        const uint8_t *sc8 = s8 + off_s8[m];
        switch (kernel) {
        case K_PROBE: acc += ck_read_sum(w8 + r0 * cols, (r1 - r0) * cols); break;
        case K_BF16: ck_gemv_bf16(bf16 + off_q8[m], cols, r0, r1, xprep, max_cols, ntok, y, max_rows); break;
        case K_Q8: ck_gemv_q8(w8, sc16, cols, r0, r1, x, max_cols, ntok, y, max_rows); break;
        case K_Q8Q8: ck_gemv_q8_q8(w8, sc16, cols, r0, r1, xq, xq_stride, ntok, y, max_rows); break;
        case K_Q4: ck_gemv_q4(w4, sc16, cols, r0, r1, x, max_cols, ntok, y, max_rows); break;
        case K_Q4Q8: ck_gemv_q4_q8(w4, sc16, cols, r0, r1, xq, xq_stride, ntok, y, max_rows); break;
        case K_FP8: ck_gemv_fp8((const uint8_t *)w8, 0.01f, cols, r0, r1, x, max_cols, ntok, y, max_rows); break;
        case K_NVFP4: ck_gemv_nvfp4(w4, sc8, 0.01f, cols, r0, r1, x, max_cols, ntok, y, max_rows); break;
        case K_NVFP4Q8: ck_gemv_nvfp4_q8(w4, sc8, 0.01f, cols, r0, r1, xq, xq_stride, ntok, y, max_rows); break;
        }
    }
    sink += acc;
}

static void *worker(void *arg) {
    int id = (int)(size_t)arg;
    ck_quant_set_isa_cap(isa_cap);
    for (;;) {
        pthread_barrier_wait(&start_gate);
        if (current < 0) return NULL;
        run_share(current, id);
        pthread_barrier_wait(&end_gate);
    }
}

static double timed_pass(int kernel) {
    current = kernel;
    double t0 = now();
    pthread_barrier_wait(&start_gate);
    run_share(kernel, 0);
    pthread_barrier_wait(&end_gate);
    return now() - t0;
}

/* Whether `name` is one of the comma-separated names in `list`. */
static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, name, n) && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    size_t pairs = 20;
    int passes = 7;
    const char *threads_arg = "1,2", *tokens_arg = "1", *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--pairs")) pairs = (size_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens")) tokens_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--passes")) passes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only")) only = argv[i + 1];
        else if (!strcmp(argv[i], "--isa")) isa_cap = atoi(argv[i + 1]); /* CK_QUANT_* level cap */
    }
    ck_quant_set_isa_cap(isa_cap);
    nmat = 2 * pairs;
    size_t n8 = 0, n4 = 0, ns16 = 0, ns8 = 0;
    for (size_t m = 0; m < nmat; m++) {
        rows_of[m] = m % 2 ? 2048 : 8192;
        cols_of[m] = m % 2 ? 8192 : 2048;
        off_q8[m] = n8, off_q4[m] = n4, off_s16[m] = ns16, off_s8[m] = ns8;
        n8 += rows_of[m] * cols_of[m];
        n4 += rows_of[m] * cols_of[m] / 2;
        ns16 += rows_of[m] * cols_of[m] / 32;
        ns8 += rows_of[m] * cols_of[m] / 16;
    }
    max_cols = 8192, max_rows = 8192;
    q8 = aligned_alloc(64, n8);
    q4 = aligned_alloc(64, n4);
    bf16 = aligned_alloc(64, 2 * n8);
    s16 = aligned_alloc(64, 2 * ns16);
    s8 = aligned_alloc(64, ns8);
    x = aligned_alloc(64, MAX_TOK * max_cols * 4);
    xprep = aligned_alloc(64, MAX_TOK * max_cols * 4);
    y = aligned_alloc(64, MAX_TOK * max_rows * 4);
    xq_stride = ck_q8_activation_bytes(max_cols);
    xq = aligned_alloc(64, MAX_TOK * xq_stride);
    fill(q8, n8);
    for (size_t i = 0; i < n8; i++)
        if ((q8[i] & 0x7f) == 0x7f) q8[i] ^= 1; /* no E4M3 NaN codes when read as fp8 */
    fill(q4, n4);
    for (size_t i = 0; i < n8; i++) bf16[i] = (uint16_t)(0x3c00 + (q8[i] & 0xff)); /* finite bf16 */
    for (size_t i = 0; i < ns16; i++) s16[i] = 0x2000 + (uint16_t)(next() & 0x3ff);
    for (size_t i = 0; i < ns8; i++) s8[i] = (uint8_t)(0x20 + (next() & 0x1f));
    for (size_t i = 0; i < MAX_TOK * max_cols; i++) x[i] = (float)((next() >> 40) / 16777216.0 - 0.5);
    for (int t = 0; t < MAX_TOK; t++) {
        ck_gemv_bf16_prepare(x + t * max_cols, xprep + t * max_cols, max_cols);
        ck_q8_quantize_activation(x + t * max_cols, max_cols, xq + t * xq_stride);
    }

    /* activation quantization: one token of 8192 columns */
    double tq = now();
    for (int i = 0; i < 2000; i++) ck_q8_quantize_activation(x, max_cols, xq);
    tq = (now() - tq) / 2000;

    printf("isa %s / quant %s; int8 set %.0f MB in %zu matrices ([8192,2048] and [2048,8192]); "
           "quantize 8192 activations: %.2f us\n",
           ck_isa(), ck_quant_isa(), n8 / 1e6, nmat, tq * 1e6);

    char tbuf[64], kbuf[64];
    strncpy(tbuf, threads_arg, sizeof tbuf - 1);
    for (char *ts = strtok(tbuf, ","); ts; ts = strtok(NULL, ",")) {
        nthreads = atoi(ts);
        pthread_barrier_init(&start_gate, NULL, (unsigned)nthreads);
        pthread_barrier_init(&end_gate, NULL, (unsigned)nthreads);
        pthread_t th[64];
        for (int i = 1; i < nthreads; i++) pthread_create(&th[i], NULL, worker, (void *)(size_t)i);
        strncpy(kbuf, tokens_arg, sizeof kbuf - 1);
        for (char *ks = kbuf; ks && *ks;) {
            ntok = atoi(ks);
            ks = strchr(ks, ',');
            if (ks) ks++;
            int enabled[K_COUNT];
            for (int k = 0; k < K_COUNT; k++) enabled[k] = !only || k == K_PROBE || k == K_BF16 || listed(only, names[k]);
            double times[K_COUNT][64];
            for (int k = 0; k < K_COUNT; k++)
                if (enabled[k]) timed_pass(k); /* warm-up: page faults, caches */
            for (int p = 0; p < passes; p++)
                for (int k = 0; k < K_COUNT; k++)
                    if (enabled[k]) times[k][p] = timed_pass(k);
            double med[K_COUNT], best[K_COUNT], med_time[K_COUNT];
            for (int k = 0; k < K_COUNT; k++) {
                if (!enabled[k]) continue;
                qsort(times[k], (size_t)passes, sizeof(double), cmp_double);
                med_time[k] = times[k][passes / 2];
                med[k] = bytes_of(k) / med_time[k] / 1e9;
                best[k] = bytes_of(k) / times[k][0] / 1e9;
            }
            printf("\nthreads %d, tokens %d: GB/s of weight bytes (median / best of %d passes)\n", nthreads, ntok,
                   passes);
            printf("  %-9s %8s %8s %9s %13s %14s\n", "kernel", "median", "best", "MB/step", "GB/s / probe",
                   "speed / bf16");
            for (int k = 0; k < K_COUNT; k++) {
                if (!enabled[k]) continue;
                printf("  %-9s %8.1f %8.1f %9.0f %13.2f %14.2f\n", names[k], med[k], best[k], bytes_of(k) / 1e6,
                       med[k] / med[K_PROBE], med_time[K_BF16] / med_time[k]);
            }
            fflush(stdout);
        }
        current = -1;
        pthread_barrier_wait(&start_gate);
        for (int i = 1; i < nthreads; i++) pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start_gate);
        pthread_barrier_destroy(&end_gate);
    }
    return 0;
}

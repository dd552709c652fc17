/* Why batch-1 GEMV splits are pinned to threads (BENCHMARKS.md, 2026-11-30 09:24 sitting).
 * 1. One core, an n x 784 f32 matrix-vector product repeated: GB/s while the matrix fits in L2
 *    and after it does not.
 * 2. Two threads, the MLP 784-512-512-16 at batch 1 with each layer's rows split in halves:
 *    each thread keeps its half every call ("pinned") or the halves swap each call.
 * Build and run: gcc -O3 -march=native -fopenmp benches/gemv_cache_probe.c -o /tmp/gemv_probe
 *                OMP_WAIT_POLICY=active /tmp/gemv_probe */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* out[j] = x . w[j, :] for n rows (a multiple of 8) of length k (a multiple of 16). */
static void gemv(const float *x, const float *w, int n, int k, float *out) {
    for (int j = 0; j < n; j += 8) {
        __m512 acc[8];
        for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();
        for (int c = 0; c < k; c += 16) {
            __m512 xv = _mm512_loadu_ps(x + c);
            for (int r = 0; r < 8; r++)
                acc[r] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + (size_t)(j + r) * k + c), acc[r]);
        }
        for (int r = 0; r < 8; r++) out[j + r] = _mm512_reduce_add_ps(acc[r]);
    }
}

static float *filled(size_t n, float v) {
    float *p = aligned_alloc(64, ((n * 4 + 63) / 64) * 64);
    for (size_t i = 0; i < n; i++) p[i] = v * (float)(i % 7);
    return p;
}

int main(void) {
    const int k = 784;
    for (int n = 64; n <= 4096; n *= 2) {
        float *w = filled((size_t)n * k, 1e-3f), *x = filled(k, 1), *o = filled(n, 0);
        const int reps = 2000;
        gemv(x, w, n, k, o);
        double t = now();
        for (int r = 0; r < reps; r++) gemv(x, w, n, k, o);
        t = (now() - t) / reps;
        printf("one core, %4d x %d (%.2f MB): %7.2f us, %6.1f GB/s\n", n, k, n * k * 4e-6, t * 1e6, n * k * 4 / t / 1e9);
        free(w), free(x), free(o);
    }
    const int dims[4] = {784, 512, 512, 16};
    float *w[3], *h[4];
    for (int l = 0; l < 3; l++) w[l] = filled((size_t)dims[l] * dims[l + 1], 1e-3f);
    for (int l = 0; l < 4; l++) h[l] = filled(1024, 1);
    for (int swap = 0; swap < 2; swap++) {
        const int reps = 20000;
        double t = now();
        for (int r = 0; r < reps; r++)
            for (int l = 0; l < 3; l++) {
                const int n = dims[l + 1], k = dims[l], half = n / 2;
#pragma omp parallel num_threads(2)
                {
                    int me = omp_get_thread_num() ^ (swap & r & 1);
                    if (n <= 16) {
                        if (me == 0) gemv(h[l], w[l], n, k, h[l + 1]);
                    } else {
                        gemv(h[l], w[l] + (size_t)me * half * k, half, k, h[l + 1] + me * half);
                    }
                }
            }
        t = (now() - t) / reps;
        printf("two threads, MLP 784-512-512-16 batch 1, halves %s: %.2f us\n", swap ? "swapping" : "pinned", t * 1e6);
    }
    return 0;
}

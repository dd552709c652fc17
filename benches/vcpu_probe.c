// Measures how fast each of the first two vCPUs runs a fixed amount of FMA work, both at once:
// on a shared host the two can differ and change from minute to minute, which an evenly split
// product feels as waiting for the slower one.
// Build and run: gcc -O2 -mavx512f -mfma -pthread benches/vcpu_probe.c -o /tmp/vcpu_probe && /tmp/vcpu_probe
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { SAMPLES = 400, CPUS = 2 };
static double seconds[CPUS][SAMPLES];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// Pinned to vCPU `arg`: SAMPLES timings of 1.2 M vector FMAs in 12 independent chains.
static void *run(void *arg) {
    long cpu = (long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps(1.0f + i * 1e-7f);
    __m512 b = _mm512_set1_ps(0.9999999f), d = _mm512_set1_ps(1e-7f);
    for (int s = 0; s < SAMPLES; s++) {
        double t = now();
        for (long it = 0; it < 100000; it++)
            for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, d);
        seconds[cpu][s] = now() - t;
    }
    float sum = 0;
    for (int i = 0; i < 12; i++) sum += _mm512_reduce_add_ps(acc[i]);
    if (sum == 1234.5f) printf("%f\n", sum);  // keeps the work
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    pthread_t threads[CPUS];
    for (long c = 0; c < CPUS; c++) pthread_create(&threads[c], NULL, run, (void *)c);
    for (int c = 0; c < CPUS; c++) pthread_join(threads[c], NULL);
    for (int c = 0; c < CPUS; c++) {
        double v[SAMPLES];
        for (int s = 0; s < SAMPLES; s++) v[s] = seconds[c][s] * 1e3;
        qsort(v, SAMPLES, sizeof v[0], by_value);
        printf("vcpu%d ms per sample: min %.3f p10 %.3f p50 %.3f p90 %.3f max %.3f\n", c, v[0],
               v[SAMPLES / 10], v[SAMPLES / 2], v[SAMPLES * 9 / 10], v[SAMPLES - 1]);
    }
    return 0;
}

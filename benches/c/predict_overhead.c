/*
 * The C baseline for the bindings' overhead benchmark (BENCHMARKS.md, "Bindings"):
 *   1. a batch-1 predict on the shared scenario's model (tests/scenario: a small DCN-v2,
 *      inference graph exported by a trainer): median ns per call, the feed tensors made
 *      once, each call running, copying "prob" out and freeing the output (the loop every
 *      binding's benchmark runs);
 *   2. bulk copy throughput of 1M floats into a tensor (ds_tensor_from_data) and out
 *      (ds_tensor_copy_to), GB/s.
 * The C++, Go and Java benchmarks measure the same two things through their bindings.
 *
 * Usage: predict_overhead [calls [threads]]   (run from the repository root; default 20000 calls)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deepseek.h"
#include "predict_request.h"

#define TRY(call)                                                                              \
    do {                                                                                       \
        DsStatus s_ = (call);                                                                  \
        if (s_ != DS_STATUS_OK) {                                                              \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,           \
                    ds_status_name(s_), ds_last_error());                                      \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define COPY_N (1 << 20)
#define ROUNDS 7

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* The scenario's model (tests/scenario/README.md), exported for inference without training. */
static DsGraph *scenario_graph(void) {
    const int64_t vocab[3] = {11, 7, 5}, mlp[2] = {8, 4};
    DsAttrs *a = NULL;
    DsGraph *g = NULL, *served = NULL;
    DsTrainerOptions *o = NULL;
    DsTrainer *tr = NULL;
    const char *outputs[1] = {"prob"};
    TRY(ds_attrs_create(&a));
    TRY(ds_attrs_set_int(a, "num_dense", 4));
    TRY(ds_attrs_set_ints(a, "vocab_sizes", vocab, 3));
    TRY(ds_attrs_set_int(a, "embed_dim", 4));
    TRY(ds_attrs_set_int(a, "cross_layers", 2));
    TRY(ds_attrs_set_ints(a, "mlp", mlp, 2));
    TRY(ds_attrs_set_int(a, "seed", 42));
    TRY(ds_model_build("dcn_v2", a, &g));
    TRY(ds_trainer_options_new(&o));
    TRY(ds_trainer_new(g, "loss", o, &tr));
    TRY(ds_trainer_export(tr, outputs, 1, &served));
    ds_trainer_free(tr);
    ds_trainer_options_free(o);
    ds_graph_free(g);
    ds_attrs_free(a);
    return served;
}

/* One request (predict_request.h), exiting on failure. */
static float predict(const DsExecutor *ex, const DsTensor *const *feeds) {
    float prob = 0;
    TRY(predict_request(ex, feeds, &prob));
    return prob;
}

int main(int argc, char **argv) {
    int calls = argc > 1 ? atoi(argv[1]) : 20000;
    if (calls < 1) calls = 1;
    if (argc > 2) TRY(ds_set_num_threads((int32_t)atoi(argv[2])));
    DsGraph *g = scenario_graph();
    DsExecutor *ex = NULL;
    TRY(ds_executor_new(g, NULL, &ex));
    const float dense[4] = {0.5f, -1.0f, 0.25f, 2.0f};
    const int64_t ids[3] = {3, 1, 4}, dense_dims[2] = {1, 4}, ids_dims[2] = {1, 3};
    DsTensor *d = NULL, *i = NULL;
    TRY(ds_tensor_from_data(DS_DTYPE_F32, dense_dims, 2, dense, sizeof dense, &d));
    TRY(ds_tensor_from_data(DS_DTYPE_I64, ids_dims, 2, ids, sizeof ids, &i));
    const DsTensor *feeds[2] = {d, i};
    volatile float sink = 0;

    double *per_call = malloc(sizeof(double) * ROUNDS);
    for (int w = 0; w < 2000; w++) sink += predict(ex, feeds);
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int c = 0; c < calls; c++) sink += predict(ex, feeds);
        per_call[r] = (now_ns() - t0) / calls;
    }
    printf("c predict batch 1: %.0f ns/call (median of %d rounds of %d calls)\n", median(per_call, ROUNDS), ROUNDS,
           calls);

    float *buf = malloc(sizeof(float) * COPY_N);
    for (int k = 0; k < COPY_N; k++) buf[k] = (float)k;
    const int64_t dims[1] = {COPY_N};
    double in_s[ROUNDS], out_s[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        DsTensor *t = NULL;
        double t0 = now_ns();
        TRY(ds_tensor_from_data(DS_DTYPE_F32, dims, 1, buf, sizeof(float) * COPY_N, &t));
        double t1 = now_ns();
        TRY(ds_tensor_copy_to(t, buf, sizeof(float) * COPY_N));
        double t2 = now_ns();
        ds_tensor_free(t);
        in_s[r] = t1 - t0;
        out_s[r] = t2 - t1;
    }
    double bytes = sizeof(float) * (double)COPY_N;
    printf("c copy in 1M f32: %.2f GB/s\n", bytes / median(in_s, ROUNDS));
    printf("c copy out 1M f32: %.2f GB/s\n", bytes / median(out_s, ROUNDS));

    free(buf);
    free(per_call);
    ds_tensor_free(d);
    ds_tensor_free(i);
    ds_executor_free(ex);
    ds_graph_free(g);
    (void)sink;
    return ds_live_objects() != 0;
}

/*
 * C ABI tests for synthetic data and metrics: the CTR generator (config versioning, batches,
 * ids inside each field's vocabulary, cursor save and seek reproducing the stream bit for
 * bit), gmix against its published checksums, AUC / log-loss / accuracy against hand-computed
 * values, and every bad input. Built and run (also under valgrind) by `make c-tests`.
 * Prints "N passed, M failed"; exits nonzero when anything failed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepseek.h"

/* ------------------------------------------------------------------ framework */

#define DS_CHECK_ERR_MESSAGES /* CHECK_ERR from check.h */
#include "check.h"

/* ------------------------------------------------------------------ helpers */

static DsTensor *f32_tensor(const float *v, int64_t n) {
    DsTensor *t = NULL;
    DsStatus s = ds_tensor_from_data(DS_DTYPE_F32, &n, 1, v, (size_t)n * sizeof(float), &t);
    if (s != DS_STATUS_OK) fail_at(__LINE__, "ds_tensor_from_data", ds_status_name(s));
    return t;
}

static DsTensor *i64_tensor(const int64_t *v, const int64_t *dims, size_t ndim, int64_t n) {
    DsTensor *t = NULL;
    DsStatus s = ds_tensor_from_data(DS_DTYPE_I64, dims, ndim, v, (size_t)n * sizeof(int64_t), &t);
    if (s != DS_STATUS_OK) fail_at(__LINE__, "ds_tensor_from_data", ds_status_name(s));
    return t;
}

/* True when the tensor has exactly these dims. */
static int has_shape(const DsTensor *t, int64_t d0, int64_t d1) {
    size_t ndim = 0;
    int64_t dims[2] = {0, 0};
    if (!t || ds_tensor_ndim(t, &ndim) != DS_STATUS_OK) return 0;
    if (ds_tensor_shape(t, dims, 2) != DS_STATUS_OK) return 0;
    return d1 < 0 ? (ndim == 1 && dims[0] == d0) : (ndim == 2 && dims[0] == d0 && dims[1] == d1);
}

static void free_all(DsTensor **ts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(ds_tensor_free(ts[i]));
        ts[i] = NULL;
    }
}

/* ------------------------------------------------------------------ CTR generator */

#define N 64

static void test_ctr_generator(void) {
    DsCtrConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = sizeof cfg;
    CHECK_OK(ds_ctr_config_init(&cfg));
    CHECK(cfg.vocab_sizes[0] == 100000 && cfg.vocab_sizes[DS_CTR_NUM_FIELDS - 1] == 100000);
    CHECK(cfg.zipf_exponent > 1.0 && cfg.zipf_exponent < 1.3);
    cfg.vocab_sizes[0] = 1;
    cfg.vocab_sizes[1] = 7;

    DsCtrGenerator *gen = NULL;
    CHECK_OK(ds_ctr_generator_new(&cfg, 1234, &gen));
    DsTensor *b[4] = {NULL, NULL, NULL, NULL}; /* dense, ids, labels, probs */
    CHECK_OK(ds_ctr_generator_next(gen, N, &b[0], &b[1], &b[2], &b[3]));
    CHECK(has_shape(b[0], N, DS_CTR_NUM_DENSE) && has_shape(b[1], N, DS_CTR_NUM_FIELDS));
    CHECK(has_shape(b[2], N, -1) && has_shape(b[3], N, -1));
    DsDtype dt = -1;
    CHECK_OK(ds_tensor_dtype(b[1], &dt));
    CHECK(dt == DS_DTYPE_I64);

    static int64_t ids[N * DS_CTR_NUM_FIELDS];
    float labels[N], probs[N];
    CHECK_OK(ds_tensor_copy_to(b[1], ids, sizeof ids));
    CHECK_OK(ds_tensor_copy_to(b[2], labels, sizeof labels));
    CHECK_OK(ds_tensor_copy_to(b[3], probs, sizeof probs));
    int ok_ids = 1, ok_labels = 1;
    for (int i = 0; i < N; i++) {
        for (int f = 0; f < DS_CTR_NUM_FIELDS; f++) {
            int64_t id = ids[i * DS_CTR_NUM_FIELDS + f];
            if (id < 0 || id >= cfg.vocab_sizes[f]) ok_ids = 0;
        }
        if (!(labels[i] == 0.0f || labels[i] == 1.0f) || !(probs[i] > 0.0f && probs[i] < 1.0f)) ok_labels = 0;
    }
    CHECK(ok_ids && ok_labels);
    CHECK(ids[0] == 0); /* field 0 has a single id */

    /* Cursor: save at 64, draw 10 more, seek back, draw again: bitwise the same. */
    uint64_t cursor = 0;
    CHECK_OK(ds_ctr_generator_cursor(gen, &cursor));
    CHECK(cursor == N);
    DsTensor *c1[3] = {NULL, NULL, NULL}, *c2[3] = {NULL, NULL, NULL};
    CHECK_OK(ds_ctr_generator_next(gen, 10, &c1[0], &c1[1], &c1[2], NULL));
    CHECK_OK(ds_ctr_generator_seek(gen, cursor));
    CHECK_OK(ds_ctr_generator_next(gen, 10, &c2[0], &c2[1], &c2[2], NULL));
    float d1[10 * DS_CTR_NUM_DENSE], d2[10 * DS_CTR_NUM_DENSE];
    int64_t i1[10 * DS_CTR_NUM_FIELDS], i2[10 * DS_CTR_NUM_FIELDS];
    CHECK_OK(ds_tensor_copy_to(c1[0], d1, sizeof d1));
    CHECK_OK(ds_tensor_copy_to(c2[0], d2, sizeof d2));
    CHECK_OK(ds_tensor_copy_to(c1[1], i1, sizeof i1));
    CHECK_OK(ds_tensor_copy_to(c2[1], i2, sizeof i2));
    CHECK(memcmp(d1, d2, sizeof d1) == 0 && memcmp(i1, i2, sizeof i1) == 0);

    /* A second generator on the same seed, seeked, draws the same samples. */
    DsCtrGenerator *gen2 = NULL;
    DsTensor *c3[3] = {NULL, NULL, NULL};
    CHECK_OK(ds_ctr_generator_new(&cfg, 1234, &gen2));
    CHECK_OK(ds_ctr_generator_seek(gen2, N));
    CHECK_OK(ds_ctr_generator_next(gen2, 10, &c3[0], &c3[1], &c3[2], NULL));
    int64_t i3[10 * DS_CTR_NUM_FIELDS];
    CHECK_OK(ds_tensor_copy_to(c3[1], i3, sizeof i3));
    CHECK(memcmp(i1, i3, sizeof i1) == 0);

    /* The oracle's AUC on the batch is defined (both classes are drawn at N = 64 here). */
    double a = 0.0;
    CHECK_OK(ds_metric_auc(b[3], b[2], &a));
    CHECK(a > 0.5 && a <= 1.0);

    free_all(b, 4);
    free_all(c1, 3);
    free_all(c2, 3);
    free_all(c3, 3);
    CHECK_OK(ds_ctr_generator_free(gen2));

    /* NULL config = the defaults. */
    DsCtrGenerator *gen3 = NULL;
    CHECK_OK(ds_ctr_generator_new(NULL, 5, &gen3));
    DsTensor *d[3] = {NULL, NULL, NULL};
    CHECK_OK(ds_ctr_generator_next(gen3, 1, &d[0], &d[1], &d[2], NULL));
    free_all(d, 3);
    CHECK_OK(ds_ctr_generator_free(gen3));

    /* ------- bad input */
    DsCtrGenerator *bad = (DsCtrGenerator *)0x1;
    CHECK_ERR(ds_ctr_generator_new(&cfg, 1, NULL), DS_STATUS_NULL_POINTER, "out_generator");
    DsCtrConfig small = cfg;
    small.struct_size = 8;
    CHECK_ERR(ds_ctr_generator_new(&small, 1, &bad), DS_STATUS_INVALID_ARGUMENT, "struct_size");
    CHECK(bad == NULL);
    CHECK_ERR(ds_ctr_config_init(&small), DS_STATUS_INVALID_ARGUMENT, "sizeof(DsCtrConfig)");
    CHECK_ERR(ds_ctr_config_init(NULL), DS_STATUS_NULL_POINTER, "config");
    DsCtrConfig zero = cfg;
    zero.vocab_sizes[3] = 0;
    CHECK_ERR(ds_ctr_generator_new(&zero, 1, &bad), DS_STATUS_INVALID_ARGUMENT, "field 3");
    zero.vocab_sizes[3] = -5;
    CHECK_ERR(ds_ctr_generator_new(&zero, 1, &bad), DS_STATUS_INVALID_ARGUMENT, "vocab_sizes");
    DsCtrConfig expo = cfg;
    expo.zipf_exponent = NAN;
    CHECK_ERR(ds_ctr_generator_new(&expo, 1, &bad), DS_STATUS_INVALID_ARGUMENT, "zipf_exponent");

    DsTensor *o[4] = {(DsTensor *)0x1, (DsTensor *)0x1, (DsTensor *)0x1, (DsTensor *)0x1};
    CHECK_ERR(ds_ctr_generator_next(gen, 0, &o[0], &o[1], &o[2], &o[3]), DS_STATUS_INVALID_ARGUMENT, "batch size");
    CHECK(o[0] == NULL && o[1] == NULL && o[2] == NULL && o[3] == NULL);
    CHECK_ERR(ds_ctr_generator_next(gen, -3, &o[0], &o[1], &o[2], NULL), DS_STATUS_INVALID_ARGUMENT, "batch size");
    CHECK_ERR(ds_ctr_generator_next(gen, INT64_MAX, &o[0], &o[1], &o[2], NULL), DS_STATUS_INVALID_ARGUMENT,
              "batch size");
    CHECK_ERR(ds_ctr_generator_next(gen, 4, NULL, &o[1], &o[2], NULL), DS_STATUS_NULL_POINTER, "out_dense");
    CHECK_ERR(ds_ctr_generator_next(gen, 4, &o[0], &o[1], NULL, NULL), DS_STATUS_NULL_POINTER, "out_labels");
    CHECK_ERR(ds_ctr_generator_next(NULL, 4, &o[0], &o[1], &o[2], NULL), DS_STATUS_INVALID_HANDLE, "generator");
    CHECK_OK(ds_ctr_generator_cursor(gen, &cursor));
    CHECK(cursor == N + 10); /* failed draws moved nothing */
    CHECK_OK(ds_ctr_generator_seek(gen, UINT64_MAX - 1));
    CHECK_ERR(ds_ctr_generator_next(gen, 4, &o[0], &o[1], &o[2], NULL), DS_STATUS_OVERFLOW, "end of the stream");
    CHECK_ERR(ds_ctr_generator_cursor(gen, NULL), DS_STATUS_NULL_POINTER, "out_cursor");
    CHECK_ERR(ds_ctr_generator_cursor(NULL, &cursor), DS_STATUS_INVALID_HANDLE, "generator");
    CHECK_ERR(ds_ctr_generator_seek(NULL, 0), DS_STATUS_INVALID_HANDLE, "generator");
    CHECK_OK(ds_ctr_generator_free(gen));
    CHECK_ERR(ds_ctr_generator_free(gen), DS_STATUS_INVALID_HANDLE, "not a live");
    CHECK_OK(ds_ctr_generator_free(NULL));
}

/* ------------------------------------------------------------------ gmix */

static void test_gmix(void) {
    DsTensor *t[4] = {NULL, NULL, NULL, NULL};
    CHECK_OK(ds_gmix_generate(42, &t[0], &t[1], &t[2], &t[3]));
    CHECK(has_shape(t[0], 8000, 32) && has_shape(t[1], 8000, -1));
    CHECK(has_shape(t[2], 4000, 32) && has_shape(t[3], 4000, -1));
    static float x[8000 * 32];
    static int64_t y[8000];
    CHECK_OK(ds_tensor_copy_to(t[0], x, sizeof x));
    CHECK_OK(ds_tensor_copy_to(t[1], y, sizeof y));
    /* ALGORITHMS.md §1.4 checksums (features rounded once to f32). */
    const int64_t y12[12] = {6, 2, 1, 0, 1, 3, 7, 2, 0, 7, 7, 0};
    CHECK(memcmp(y, y12, sizeof y12) == 0);
    CHECK(x[0] == (float)3.625610216835298 && x[1] == (float)-2.384977545317515 && x[2] == (float)1.4338913985063497);
    int64_t counts[8] = {0};
    for (int i = 0; i < 8000; i++) counts[y[i]]++;
    const int64_t want[8] = {1045, 981, 931, 997, 1036, 911, 1046, 1053};
    CHECK(memcmp(counts, want, sizeof want) == 0);

    /* Multiclass accuracy of "predict class 0 always" from one-hot logits = share of class 0. */
    static float logits[8000 * 8];
    memset(logits, 0, sizeof logits);
    for (int i = 0; i < 8000; i++) logits[i * 8] = 1.0f;
    int64_t dims[2] = {8000, 8};
    DsTensor *lt = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dims, 2, logits, sizeof logits, &lt));
    double acc = 0.0;
    CHECK_OK(ds_metric_accuracy(lt, t[1], &acc));
    CHECK(acc == 1045.0 / 8000.0);
    CHECK_ERR(ds_metric_accuracy(lt, t[3], &acc), DS_STATUS_SHAPE_MISMATCH, "labels");
    CHECK_ERR(ds_metric_accuracy(lt, t[0], &acc), DS_STATUS_DTYPE_MISMATCH, "labels");
    CHECK_OK(ds_tensor_free(lt));
    free_all(t, 4);

    DsTensor *o[4] = {(DsTensor *)0x1, (DsTensor *)0x1, (DsTensor *)0x1, (DsTensor *)0x1};
    CHECK_ERR(ds_gmix_generate(42, &o[0], &o[1], &o[2], NULL), DS_STATUS_NULL_POINTER, "out_y_test");
    CHECK(o[0] == NULL && o[1] == NULL && o[2] == NULL);
}

/* ------------------------------------------------------------------ metrics */

static void test_metrics(void) {
    const float s[4] = {0.1f, 0.5f, 0.5f, 0.9f}, l[4] = {0, 0, 1, 1};
    DsTensor *st = f32_tensor(s, 4), *lt = f32_tensor(l, 4);
    double v = 0.0;
    CHECK_OK(ds_metric_auc(st, lt, &v));
    CHECK(v == 0.875); /* the tie between 0.5s counts one half */
    CHECK_OK(ds_metric_accuracy(st, lt, &v));
    CHECK(v == 0.75); /* 0.5 predicts 0 */
    CHECK_OK(ds_metric_log_loss(st, lt, &v));
    /* The f32 scores widen exactly to f64: 1 - 0.1f is not 0.9f. */
    double want = -(log(1.0 - (double)0.1f) + log(0.5) + log(0.5) + log((double)0.9f)) / 4.0;
    CHECK(fabs(v - want) < 1e-12);

    /* i64 labels work for the binary metrics too. */
    const int64_t li[4] = {0, 0, 1, 1};
    int64_t four = 4;
    DsTensor *lit = i64_tensor(li, &four, 1, 4);
    CHECK_OK(ds_metric_auc(st, lit, &v));
    CHECK(v == 0.875);

    /* ------- bad input */
    const float one_class[4] = {1, 1, 1, 1}, logits[4] = {2.0f, -1.0f, 0.5f, 3.0f}, nan4[4] = {0.1f, NAN, 0.2f, 0.3f};
    DsTensor *single = f32_tensor(one_class, 4), *short_l = f32_tensor(l, 3), *lg = f32_tensor(logits, 4);
    DsTensor *nan_t = f32_tensor(nan4, 4), *two = f32_tensor(s, 4);
    CHECK_ERR(ds_metric_auc(st, single, &v), DS_STATUS_INVALID_ARGUMENT, "both classes");
    CHECK_ERR(ds_metric_auc(st, short_l, &v), DS_STATUS_SHAPE_MISMATCH, "labels");
    CHECK_ERR(ds_metric_auc(nan_t, lt, &v), DS_STATUS_INVALID_ARGUMENT, "not finite");
    CHECK_ERR(ds_metric_auc(st, two, &v), DS_STATUS_INVALID_ARGUMENT, "must be 0 or 1");
    CHECK_ERR(ds_metric_auc(NULL, lt, &v), DS_STATUS_INVALID_HANDLE, "scores");
    CHECK_ERR(ds_metric_auc(st, NULL, &v), DS_STATUS_INVALID_HANDLE, "labels");
    CHECK_ERR(ds_metric_auc(st, lt, NULL), DS_STATUS_NULL_POINTER, "out_value");
    CHECK_ERR(ds_metric_log_loss(lg, lt, &v), DS_STATUS_INVALID_ARGUMENT, "[0, 1]");
    CHECK_ERR(ds_metric_log_loss(st, short_l, &v), DS_STATUS_SHAPE_MISMATCH, "labels");
    CHECK_ERR(ds_metric_accuracy(nan_t, lt, &v), DS_STATUS_INVALID_ARGUMENT, "not finite");
    CHECK_ERR(ds_metric_accuracy(st, NULL, &v), DS_STATUS_INVALID_HANDLE, "labels");

    DsTensor *all[] = {st, lt, lit, single, short_l, lg, nan_t, two};
    free_all(all, sizeof all / sizeof all[0]);
}

int main(void) {
    uint64_t live_start = ds_live_objects();
    CHECK_OK(ds_check_abi(DS_ABI_VERSION));
    test_ctr_generator();
    test_gmix();
    test_metrics();
    CHECK(ds_live_objects() == live_start);
    ds_cpu_allocator_empty_cache(); /* cached blocks would show as "possibly lost" under valgrind */
    printf("test_data_api: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

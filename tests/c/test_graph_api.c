/*
 * C ABI tests for static graphs: the graph builder (a 2-layer MLP with a symbolic batch),
 * the per-thread trace scope, graph autodiff, executors (options, runs from 16 threads at
 * once, cancellation, statistics), and every bad input. Results are compared bit for bit
 * with the same computation through ds_op_call. Built and run (also under valgrind) by
 * `make c-tests`. Prints "N passed, M failed"; exits nonzero when anything failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deepseek.h"

/* ------------------------------------------------------------------ framework */

#define DS_CHECK_ERR_MESSAGES /* CHECK_ERR from check.h */
#include "check.h"

/* ------------------------------------------------------------------ helpers */

#define IN 8
#define HID 16
#define OUT 4
#define MAX_BATCH 70

static DsTensor *normal(const int64_t *dims, size_t ndim, uint64_t seed) {
    DsTensor *t = NULL;
    DsStatus s = ds_tensor_rand_normal(DS_DTYPE_F32, dims, ndim, 0.0, 0.5, seed, DS_DEVICE_CPU, 0, &t);
    if (s != DS_STATUS_OK) fail_at(__LINE__, "ds_tensor_rand_normal", ds_status_name(s));
    return t;
}

static DsTensor *labels_for(int64_t batch) {
    int64_t v[MAX_BATCH];
    for (int64_t i = 0; i < batch; i++) v[i] = (i * 3 + 1) % OUT;
    DsTensor *t = NULL;
    DsStatus s = ds_tensor_from_data(DS_DTYPE_I64, &batch, 1, v, (size_t)batch * sizeof(int64_t), &t);
    if (s != DS_STATUS_OK) fail_at(__LINE__, "ds_tensor_from_data", ds_status_name(s));
    return t;
}

/* Copies a float tensor out; returns the element count, 0 on failure. */
static size_t floats(const DsTensor *t, float *dst, size_t cap) {
    int64_t n = 0;
    if (!t || ds_tensor_numel(t, &n) != DS_STATUS_OK || n <= 0 || (size_t)n > cap) return 0;
    if (ds_tensor_copy_to(t, dst, (size_t)n * sizeof(float)) != DS_STATUS_OK) return 0;
    return (size_t)n;
}

/* Bitwise equality of two float tensors. */
static int same_bits(const DsTensor *a, const DsTensor *b) {
    static float x[MAX_BATCH * HID * IN], y[MAX_BATCH * HID * IN];
    size_t n = floats(a, x, sizeof x / sizeof *x), m = floats(b, y, sizeof y / sizeof *y);
    return n > 0 && n == m && memcmp(x, y, n * sizeof(float)) == 0;
}

/* A one-output op through the eager API; NULL (and a recorded failure) on error. */
static DsTensor *op_at(int line, const char *name, const DsTensor *a, const DsTensor *b, const DsTensor *c) {
    const DsTensor *in[3] = {a, b, c};
    DsTensor *out[1] = {NULL};
    size_t n = 0;
    DsStatus s = ds_op_call(name, in, c ? 3 : b ? 2 : 1, NULL, out, 1, &n);
    if (s != DS_STATUS_OK || n != 1) {
        fail_at(line, name, ds_status_name(s));
        return NULL;
    }
    return out[0];
}
#define OP(name, a, b, c) op_at(__LINE__, (name), (a), (b), (c))

typedef struct {
    DsTensor *w1, *b1, *w2, *b2;
} Mlp;

static Mlp mlp_new(void) {
    int64_t dw1[2] = {HID, IN}, db1[1] = {HID}, dw2[2] = {OUT, HID}, db2[1] = {OUT};
    Mlp m = {normal(dw1, 2, 1), normal(db1, 1, 2), normal(dw2, 2, 3), normal(db2, 1, 4)};
    return m;
}

static void mlp_free(Mlp *m) {
    CHECK_OK(ds_tensor_free(m->w1));
    CHECK_OK(ds_tensor_free(m->b1));
    CHECK_OK(ds_tensor_free(m->w2));
    CHECK_OK(ds_tensor_free(m->b2));
}

/* y = linear(relu(linear(x, w1, b1)), w2, b2) through ds_op_call. */
static DsTensor *mlp_eager(const Mlp *m, const DsTensor *x) {
    DsTensor *h = OP("linear", x, m->w1, m->b1);
    DsTensor *r = OP("relu", h, NULL, NULL);
    DsTensor *y = OP("linear", r, m->w2, m->b2);
    CHECK_OK(ds_tensor_free(h));
    CHECK_OK(ds_tensor_free(r));
    return y;
}

static DsValueId op1(DsGraphBuilder *b, const char *name, DsValueId x, DsValueId y, DsValueId z, size_t n) {
    DsValueId in[3] = {x, y, z}, out[1] = {0};
    size_t n_out = 0;
    CHECK_OK(ds_graph_builder_op(b, name, in, n, NULL, out, 1, &n_out));
    CHECK(n_out == 1);
    return out[0];
}

/* The MLP as a graph: input x f32[batch, 8], input labels i64[batch], outputs "y" and
 * "loss" (cross entropy). */
static DsGraph *mlp_graph(const Mlp *m) {
    DsGraphBuilder *b = NULL;
    CHECK_OK(ds_graph_builder_new(&b));
    int64_t dx[2] = {-1, IN}, dl[1] = {-1};
    const char *sx[2] = {"batch", NULL}, *sl[1] = {"batch"};
    DsValueId x = 0, labels = 0, w1 = 0, b1 = 0, w2 = 0, b2 = 0;
    CHECK_OK(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dx, 2, sx, &x));
    CHECK_OK(ds_graph_builder_input(b, "labels", DS_DTYPE_I64, dl, 1, sl, &labels));
    CHECK_OK(ds_graph_builder_param(b, "w1", m->w1, true, &w1));
    CHECK_OK(ds_graph_builder_param(b, "b1", m->b1, true, &b1));
    CHECK_OK(ds_graph_builder_param(b, "w2", m->w2, true, &w2));
    CHECK_OK(ds_graph_builder_param(b, "b2", m->b2, true, &b2));
    DsValueId h = op1(b, "linear", x, w1, b1, 3);
    DsValueId r = op1(b, "relu", h, 0, 0, 1);
    DsValueId y = op1(b, "linear", r, w2, b2, 3);
    DsValueId loss = op1(b, "cross_entropy", y, labels, 0, 2);
    CHECK_OK(ds_graph_builder_output(b, "y", y));
    CHECK_OK(ds_graph_builder_output(b, "loss", loss));
    DsGraph *g = NULL;
    CHECK_OK(ds_graph_builder_finish(b, &g));
    CHECK_OK(ds_graph_builder_free(b));
    return g;
}

/* Runs `ex` on x (and labels when not NULL), fetching one output; NULL on failure. */
static DsTensor *run1(const DsExecutor *ex, const DsTensor *x, const char *fetch) {
    const char *names[1] = {"x"}, *fetches[1] = {fetch};
    const DsTensor *feeds[1] = {x};
    DsTensor *out[1] = {NULL};
    if (ds_executor_run(ex, names, feeds, 1, fetches, 1, out) != DS_STATUS_OK) return NULL;
    return out[0];
}

/* ------------------------------------------------------------------ builder and executor */

static void test_builder_mlp(void) {
    Mlp m = mlp_new();
    DsGraph *g = mlp_graph(&m);
    size_t n_ops = 0;
    CHECK_OK(ds_graph_num_ops(g, &n_ops));
    CHECK(n_ops == 4);

    /* Two-call dump: the size first, then the text. */
    size_t needed = 0;
    CHECK_ERR(ds_graph_dump(g, NULL, 0, &needed), DS_STATUS_BUFFER_TOO_SMALL, "capacity");
    CHECK(needed > 1);
    char *text = malloc(needed);
    size_t again = 0;
    CHECK_OK(ds_graph_dump(g, text, needed, &again));
    CHECK(again == needed && strlen(text) + 1 == needed);
    CHECK(strstr(text, "input \"x\"") && strstr(text, "f32[batch, 8]") && strstr(text, "f32[batch, 4]") &&
          strstr(text, "linear(%0") && strstr(text, "output \"loss\""));
    free(text);

    /* Every optimisation level gives the eager bits, for several batch sizes. The graph is
     * freed before the last executor runs. */
    for (int32_t lvl = 0; lvl <= 2; lvl++) {
        DsExecOptions *o = NULL;
        CHECK_OK(ds_exec_options_new(&o));
        CHECK_OK(ds_exec_options_set_opt_level(o, lvl));
        CHECK_OK(ds_exec_options_set_inter_op_threads(o, lvl == 1 ? 1 : 0));
        DsExecutor *ex = NULL;
        CHECK_OK(ds_executor_new(g, o, &ex));
        CHECK_OK(ds_exec_options_free(o));
        if (lvl == 2) {
            CHECK_OK(ds_graph_free(g));
            g = NULL;
        }
        int64_t batches[3] = {1, 3, MAX_BATCH};
        for (int i = 0; i < 3; i++) {
            int64_t dx[2] = {batches[i], IN};
            DsTensor *x = normal(dx, 2, 10 + (uint64_t)batches[i]);
            DsTensor *got = run1(ex, x, "y");
            DsTensor *want = mlp_eager(&m, x);
            CHECK(got != NULL && same_bits(got, want));
            CHECK_OK(ds_tensor_free(got));
            CHECK_OK(ds_tensor_free(want));
            CHECK_OK(ds_tensor_free(x));
        }
        CHECK_OK(ds_executor_free(ex));
    }
    mlp_free(&m);
}

/* ------------------------------------------------------------------ tracing */

static void test_trace_mlp(void) {
    Mlp m = mlp_new();
    int64_t dx[2] = {5, IN};
    DsTensor *x = normal(dx, 2, 7);
    CHECK_OK(ds_graph_trace_begin());
    const char *sx[2] = {"n", NULL};
    CHECK_OK(ds_graph_trace_input("x", x, sx, 2));
    CHECK_OK(ds_graph_trace_param("w1", m.w1, true));
    CHECK_OK(ds_graph_trace_param("b1", m.b1, true));
    CHECK_OK(ds_graph_trace_param("w2", m.w2, true));
    CHECK_OK(ds_graph_trace_param("b2", m.b2, false));
    DsTensor *y = mlp_eager(&m, x);
    CHECK_OK(ds_graph_trace_output("y", y));
    DsGraph *g = NULL;
    CHECK_OK(ds_graph_trace_end(&g));
    size_t n_ops = 0;
    CHECK_OK(ds_graph_num_ops(g, &n_ops));
    CHECK(n_ops == 3);
    size_t needed = 0;
    CHECK_ERR(ds_graph_dump(g, NULL, 0, &needed), DS_STATUS_BUFFER_TOO_SMALL, "capacity");
    char *text = malloc(needed);
    CHECK_OK(ds_graph_dump(g, text, needed, NULL));
    CHECK(strstr(text, "f32[n, 8]") && strstr(text, "param \"b2\" (frozen)"));
    free(text);

    /* After the scope, ops are no longer recorded (the graph above is unchanged). */
    DsTensor *extra = OP("relu", y, NULL, NULL);
    CHECK_OK(ds_graph_num_ops(g, &n_ops));
    CHECK(n_ops == 3);

    DsExecutor *ex = NULL;
    CHECK_OK(ds_executor_new(g, NULL, &ex));
    CHECK_OK(ds_graph_free(g));
    int64_t dx2[2] = {9, IN};
    DsTensor *x2 = normal(dx2, 2, 8);
    DsTensor *got = run1(ex, x2, "y");
    DsTensor *want = mlp_eager(&m, x2);
    CHECK(got != NULL && same_bits(got, want));
    /* The traced graph matches the builder's one, too. */
    DsGraph *gb = mlp_graph(&m);
    DsExecutor *exb = NULL;
    CHECK_OK(ds_executor_new(gb, NULL, &exb));
    DsTensor *got_b = run1(exb, x2, "y");
    CHECK(got_b != NULL && same_bits(got, got_b));

    DsTensor *ts[] = {x, y, extra, x2, got, want, got_b};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) CHECK_OK(ds_tensor_free(ts[i]));
    CHECK_OK(ds_executor_free(ex));
    CHECK_OK(ds_executor_free(exb));
    CHECK_OK(ds_graph_free(gb));
    mlp_free(&m);
}

static void test_trace_errors(void) {
    int64_t dx[2] = {4, IN};
    DsTensor *x = normal(dx, 2, 1);
    DsGraph *g = (DsGraph *)1; /* must be reset to NULL on failure */
    CHECK_ERR(ds_graph_trace_end(&g), DS_STATUS_INVALID_ARGUMENT, "no trace is open");
    CHECK(g == NULL);
    CHECK_ERR(ds_graph_trace_input("x", x, NULL, 0), DS_STATUS_INVALID_ARGUMENT, "no trace is open");
    CHECK_ERR(ds_graph_trace_output("y", x), DS_STATUS_INVALID_ARGUMENT, "no trace is open");
    CHECK_OK(ds_graph_trace_abort()); /* nothing open: a no-op */

    /* A reshape that bakes the traced batch size is reported by trace_end. */
    CHECK_OK(ds_graph_trace_begin());
    CHECK_ERR(ds_graph_trace_begin(), DS_STATUS_INVALID_ARGUMENT, "already open");
    const char *sx[2] = {"b", NULL};
    CHECK_ERR(ds_graph_trace_input("x", x, sx, 1), DS_STATUS_INVALID_ARGUMENT, "rank 2");
    CHECK_OK(ds_graph_trace_input("x", x, sx, 2));
    CHECK_ERR(ds_graph_trace_input("x2", x, sx, 2), DS_STATUS_INVALID_ARGUMENT, "already part of the trace");
    DsAttrs *a = NULL;
    CHECK_OK(ds_attrs_create(&a));
    int64_t shape[3] = {2, -1, IN};
    CHECK_OK(ds_attrs_set_ints(a, "shape", shape, 3));
    const DsTensor *in[1] = {x};
    DsTensor *r = NULL;
    size_t n = 0;
    CHECK_OK(ds_op_call("reshape", in, 1, a, &r, 1, &n)); /* runs eagerly all the same */
    CHECK_OK(ds_graph_trace_output("y", r));
    CHECK_ERR(ds_graph_trace_end(&g), DS_STATUS_SHAPE_MISMATCH, "reshape");
    CHECK(g == NULL);
    CHECK_ERR(ds_graph_trace_end(&g), DS_STATUS_INVALID_ARGUMENT, "no trace is open"); /* it was closed */

    /* No outputs; a NULL out-pointer still closes the scope. */
    CHECK_OK(ds_graph_trace_begin());
    CHECK_ERR(ds_graph_trace_end(&g), DS_STATUS_INVALID_ARGUMENT, "no outputs");
    CHECK_OK(ds_graph_trace_begin());
    CHECK_ERR(ds_graph_trace_end(NULL), DS_STATUS_NULL_POINTER, "out_graph");
    CHECK_OK(ds_graph_trace_begin()); /* possible only because the previous scope closed */
    CHECK_ERR(ds_graph_trace_param(NULL, x, true), DS_STATUS_NULL_POINTER, "name");
    CHECK_ERR(ds_graph_trace_param("p", NULL, true), DS_STATUS_INVALID_HANDLE, "DsTensor");
    CHECK_OK(ds_graph_trace_abort());
    CHECK_ERR(ds_graph_trace_param("p", x, true), DS_STATUS_INVALID_ARGUMENT, "no trace is open");

    CHECK_OK(ds_tensor_free(r));
    CHECK_OK(ds_attrs_free(a));
    CHECK_OK(ds_tensor_free(x));
}

/* ------------------------------------------------------------------ gradients */

static void test_gradients(void) {
    Mlp m = mlp_new();
    DsGraph *g = mlp_graph(&m);
    DsGraph *gg = NULL;
    CHECK_OK(ds_graph_append_gradients(g, "loss", NULL, 0, &gg));
    size_t n_fwd = 0, n_all = 0;
    CHECK_OK(ds_graph_num_ops(g, &n_fwd));
    CHECK_OK(ds_graph_num_ops(gg, &n_all));
    CHECK(n_fwd == 4 && n_all > n_fwd);
    DsGraph *g1 = NULL;
    const char *only[1] = {"w2"};
    CHECK_OK(ds_graph_append_gradients(g, "loss", only, 1, &g1));

    int64_t batch = 6, dx[2] = {batch, IN};
    DsTensor *x = normal(dx, 2, 5), *labels = labels_for(batch);
    /* Eager: the same computation, then backward. */
    DsTensor *params[4] = {m.w1, m.b1, m.w2, m.b2};
    for (int i = 0; i < 4; i++) CHECK_OK(ds_tensor_set_requires_grad(params[i], true));
    DsTensor *y = mlp_eager(&m, x);
    DsTensor *loss = OP("cross_entropy", y, labels, NULL);
    CHECK_OK(ds_tensor_backward(loss, NULL, false));

    const char *feed_names[2] = {"x", "labels"};
    const DsTensor *feeds[2] = {x, labels};
    const char *fetches[5] = {"loss", "grad/w1", "grad/b1", "grad/w2", "grad/b2"};
    for (int32_t lvl = 0; lvl <= 2; lvl++) {
        DsExecOptions *o = NULL;
        CHECK_OK(ds_exec_options_new(&o));
        CHECK_OK(ds_exec_options_set_opt_level(o, lvl));
        DsExecutor *ex = NULL;
        CHECK_OK(ds_executor_new(gg, o, &ex));
        DsTensor *out[5] = {NULL};
        CHECK_OK(ds_executor_run(ex, feed_names, feeds, 2, fetches, 5, out));
        CHECK(same_bits(out[0], loss));
        for (int i = 0; i < 4; i++) {
            DsTensor *grad = NULL;
            CHECK_OK(ds_tensor_grad(params[i], &grad));
            if (!same_bits(out[i + 1], grad)) fail_at(__LINE__, fetches[i + 1], "differs from eager");
            else g_pass++;
            CHECK_OK(ds_tensor_free(grad));
        }
        for (int i = 0; i < 5; i++) CHECK_OK(ds_tensor_free(out[i]));
        CHECK_OK(ds_executor_free(ex));
        CHECK_OK(ds_exec_options_free(o));
    }
    /* Only w2 was asked for: the other gradients are not outputs. */
    DsExecutor *ex1 = NULL;
    CHECK_OK(ds_executor_new(g1, NULL, &ex1));
    DsTensor *o1[1] = {NULL};
    CHECK_OK(ds_executor_run(ex1, feed_names, feeds, 2, fetches + 3, 1, o1));
    DsTensor *gw2 = NULL;
    CHECK_OK(ds_tensor_grad(m.w2, &gw2));
    CHECK(same_bits(o1[0], gw2));
    DsTensor *o2[1] = {NULL};
    CHECK_ERR(ds_executor_run(ex1, feed_names, feeds, 2, fetches + 1, 1, o2), DS_STATUS_NOT_FOUND, "grad/w1");

    /* Bad gradient requests. */
    DsGraph *bad = (DsGraph *)1;
    CHECK_ERR(ds_graph_append_gradients(g, "y", NULL, 0, &bad), DS_STATUS_INVALID_ARGUMENT, "one-element");
    CHECK(bad == NULL);
    CHECK_ERR(ds_graph_append_gradients(g, "nope", NULL, 0, &bad), DS_STATUS_NOT_FOUND, "nope");
    const char *unknown[1] = {"w9"};
    CHECK(ds_graph_append_gradients(g, "loss", unknown, 1, &bad) != DS_STATUS_OK && bad == NULL &&
          strstr(ds_last_error(), "w9"));
    CHECK_ERR(ds_graph_append_gradients(g, NULL, NULL, 0, &bad), DS_STATUS_NULL_POINTER, "loss");
    CHECK_ERR(ds_graph_append_gradients(g, "loss", NULL, 1, &bad), DS_STATUS_NULL_POINTER, "wrt");

    DsTensor *ts[] = {x, labels, y, loss, o1[0], gw2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) CHECK_OK(ds_tensor_free(ts[i]));
    CHECK_OK(ds_executor_free(ex1));
    CHECK_OK(ds_graph_free(g1));
    CHECK_OK(ds_graph_free(gg));
    CHECK_OK(ds_graph_free(g));
    mlp_free(&m);
}

/* ------------------------------------------------------------------ threads */

#define THREADS 16
#define RUNS 200
#define NB 12

typedef struct {
    const DsExecutor *ex;
    DsTensor **xs;   /* NB inputs of different batch sizes, shared by every thread */
    float (*want)[MAX_BATCH * OUT];
    size_t *want_n;
    int id, failures, mismatches;
} Worker;

static void *worker(void *p) {
    Worker *w = p;
    float got[MAX_BATCH * OUT];
    for (int i = 0; i < RUNS; i++) {
        int k = (w->id * 7 + i) % NB;
        DsTensor *y = run1(w->ex, w->xs[k], "y");
        if (!y) {
            w->failures++;
            continue;
        }
        size_t n = floats(y, got, MAX_BATCH * OUT);
        if (n != w->want_n[k] || memcmp(got, w->want[k], n * sizeof(float)) != 0) w->mismatches++;
        if (ds_tensor_free(y) != DS_STATUS_OK) w->failures++;
    }
    return NULL;
}

static void test_threads(void) {
    Mlp m = mlp_new();
    DsGraph *g = mlp_graph(&m);
    DsExecutor *ex = NULL;
    CHECK_OK(ds_executor_new(g, NULL, &ex));
    CHECK_OK(ds_graph_free(g)); /* the executor keeps what it needs */

    static float want[NB][MAX_BATCH * OUT];
    size_t want_n[NB];
    DsTensor *xs[NB];
    for (int k = 0; k < NB; k++) {
        int64_t dx[2] = {1 + k * 6, IN};
        xs[k] = normal(dx, 2, 100 + (uint64_t)k);
        DsTensor *y = run1(ex, xs[k], "y");
        want_n[k] = floats(y, want[k], MAX_BATCH * OUT);
        CHECK(want_n[k] == (size_t)(dx[0] * OUT));
        CHECK_OK(ds_tensor_free(y));
    }
    Worker ws[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ws[t] = (Worker){ex, xs, want, want_n, t, 0, 0};
        CHECK(pthread_create(&th[t], NULL, worker, &ws[t]) == 0);
    }
    int failures = 0, mismatches = 0;
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(th[t], NULL) == 0);
        failures += ws[t].failures;
        mismatches += ws[t].mismatches;
    }
    CHECK(failures == 0);
    CHECK(mismatches == 0);
    if (failures || mismatches) fprintf(stderr, "     %d failed runs, %d mismatches\n", failures, mismatches);
    for (int k = 0; k < NB; k++) CHECK_OK(ds_tensor_free(xs[k]));
    CHECK_OK(ds_executor_free(ex));
    mlp_free(&m);
}

/* ------------------------------------------------------------------ bad input */

static void test_bad_builder(void) {
    Mlp m = mlp_new();
    DsGraphBuilder *b = NULL;
    CHECK_ERR(ds_graph_builder_new(NULL), DS_STATUS_NULL_POINTER, "out_builder");
    CHECK_OK(ds_graph_builder_new(&b));
    int64_t dx[2] = {-1, IN}, dbad[2] = {-2, IN};
    const char *sx[2] = {"batch", NULL}, *snull[2] = {NULL, NULL};
    DsValueId x = 0, w1 = 0, v = 0;
    CHECK_ERR(ds_graph_builder_input(NULL, "x", DS_DTYPE_F32, dx, 2, sx, &x), DS_STATUS_INVALID_HANDLE, "builder");
    CHECK_ERR(ds_graph_builder_input(b, NULL, DS_DTYPE_F32, dx, 2, sx, &x), DS_STATUS_NULL_POINTER, "name");
    CHECK_ERR(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dx, 2, sx, NULL), DS_STATUS_NULL_POINTER, "out_value");
    CHECK_ERR(ds_graph_builder_input(b, "x", 99, dx, 2, sx, &x), DS_STATUS_INVALID_DTYPE, "99");
    CHECK_ERR(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dx, 2, NULL, &x), DS_STATUS_INVALID_ARGUMENT,
              "dims[0] is -1&sym_names is NULL");
    CHECK_ERR(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dx, 2, snull, &x), DS_STATUS_INVALID_ARGUMENT,
              "sym_names[0] is NULL");
    CHECK_ERR(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dbad, 2, sx, &x), DS_STATUS_INVALID_ARGUMENT, "dims[0] = -2");
    CHECK_ERR(ds_graph_builder_input(b, "x", DS_DTYPE_F32, NULL, 2, sx, &x), DS_STATUS_NULL_POINTER, "dims");
    CHECK_OK(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dx, 2, sx, &x));
    /* Duplicate names. */
    CHECK_ERR(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dx, 2, sx, &v), DS_STATUS_INVALID_ARGUMENT,
              "already has an input or parameter named `x`");
    CHECK_ERR(ds_graph_builder_param(b, "x", m.w1, true, &v), DS_STATUS_INVALID_ARGUMENT, "named `x`");
    CHECK_ERR(ds_graph_builder_param(b, "w1", NULL, true, &v), DS_STATUS_INVALID_HANDLE, "tensor");
    CHECK_OK(ds_graph_builder_param(b, "w1", m.w1, true, &w1));
    CHECK_ERR(ds_graph_builder_constant(b, NULL, &v), DS_STATUS_INVALID_HANDLE, "tensor");

    DsValueId in[3] = {x, w1, 0}, out[4] = {0};
    size_t n = 99;
    CHECK_ERR(ds_graph_builder_op(b, "no_such_op", in, 2, NULL, out, 4, &n), DS_STATUS_NOT_FOUND,
              "no op named `no_such_op`");
    CHECK(n == 0);
    CHECK_ERR(ds_graph_builder_op(b, "relu", in, 2, NULL, out, 4, &n), DS_STATUS_INVALID_ARGUMENT,
              "relu&expected 1 inputs&given 2");
    /* x is f32[batch, 8], w1 f32[16, 8]: adding them names the node. */
    CHECK_ERR(ds_graph_builder_op(b, "add", in, 2, NULL, out, 4, &n), DS_STATUS_SHAPE_MISMATCH, "node 2 (`add`)");
    DsValueId dangling[2] = {x, 999};
    CHECK_ERR(ds_graph_builder_op(b, "mul", dangling, 2, NULL, out, 4, &n), DS_STATUS_INVALID_ARGUMENT,
              "%999&no earlier node defines");
    CHECK_ERR(ds_graph_builder_op(b, "relu", NULL, 1, NULL, out, 4, &n), DS_STATUS_NULL_POINTER, "inputs");
    CHECK_ERR(ds_graph_builder_op(b, NULL, in, 1, NULL, out, 4, &n), DS_STATUS_NULL_POINTER, "op_name");
    CHECK_ERR(ds_graph_builder_op(b, "relu", in, 1, NULL, out, 4, NULL), DS_STATUS_NULL_POINTER, "out_n_values");
    /* A bad attribute names the node. */
    DsAttrs *a = NULL;
    CHECK_OK(ds_attrs_create(&a));
    CHECK_OK(ds_attrs_set_int(a, "no_such_attr", 1));
    CHECK(ds_graph_builder_op(b, "relu", in, 1, a, out, 4, &n) != DS_STATUS_OK && strstr(ds_last_error(), "node 2") &&
          strstr(ds_last_error(), "no_such_attr"));
    CHECK_OK(ds_attrs_free(a));
    /* A short output array: nothing is added, the count needed is reported. */
    CHECK_ERR(ds_graph_builder_op(b, "relu", in, 1, NULL, out, 0, &n), DS_STATUS_BUFFER_TOO_SMALL, "capacity");
    CHECK(n == 1);
    /* None of the failures above added a node: the next op is node 2. */
    CHECK_OK(ds_graph_builder_op(b, "relu", in, 1, NULL, out, 4, &n));
    CHECK(n == 1 && out[0] == 2);
    DsGraph *g = (DsGraph *)1;
    CHECK_ERR(ds_graph_builder_finish(b, &g), DS_STATUS_INVALID_ARGUMENT, "no outputs");
    CHECK(g == NULL);
    CHECK_ERR(ds_graph_builder_output(b, "r", 999), DS_STATUS_INVALID_ARGUMENT, "%999");
    CHECK_ERR(ds_graph_builder_output(b, "", out[0]), DS_STATUS_INVALID_ARGUMENT, "empty");
    CHECK_OK(ds_graph_builder_output(b, "r", out[0]));
    CHECK_ERR(ds_graph_builder_output(b, "r", x), DS_STATUS_INVALID_ARGUMENT, "already has an output named `r`");
    /* finish does not consume: the builder keeps growing, earlier graphs stay as they were. */
    CHECK_OK(ds_graph_builder_finish(b, &g));
    DsValueId r2 = op1(b, "relu", out[0], 0, 0, 1);
    CHECK_OK(ds_graph_builder_output(b, "r2", r2));
    DsGraph *g2 = NULL;
    CHECK_OK(ds_graph_builder_finish(b, &g2));
    size_t n1 = 0, n2 = 0;
    CHECK_OK(ds_graph_num_ops(g, &n1));
    CHECK_OK(ds_graph_num_ops(g2, &n2));
    CHECK(n1 == 1 && n2 == 2);

    /* Use after free and double free of a builder. */
    CHECK_OK(ds_graph_builder_free(b));
    CHECK_ERR(ds_graph_builder_free(b), DS_STATUS_INVALID_HANDLE, "already freed");
    CHECK_ERR(ds_graph_builder_output(b, "z", x), DS_STATUS_INVALID_HANDLE, "DsGraphBuilder");
    DsGraph *g3 = (DsGraph *)1;
    CHECK_ERR(ds_graph_builder_finish(b, &g3), DS_STATUS_INVALID_HANDLE, "DsGraphBuilder");
    CHECK(g3 == NULL);
    CHECK_OK(ds_graph_builder_free(NULL));

    /* A graph handle is not a builder, a tensor is not a graph. */
    CHECK_ERR(ds_graph_builder_output((DsGraphBuilder *)g, "z", x), DS_STATUS_INVALID_HANDLE,
              "is a DsGraph, expected a DsGraphBuilder");
    CHECK_ERR(ds_graph_num_ops((const DsGraph *)m.w1, &n1), DS_STATUS_INVALID_HANDLE, "expected a DsGraph");
    CHECK_ERR(ds_graph_num_ops(g, NULL), DS_STATUS_NULL_POINTER, "out_count");
    char small[4];
    size_t needed = 0;
    CHECK_ERR(ds_graph_dump(g, small, sizeof small, &needed), DS_STATUS_BUFFER_TOO_SMALL, "capacity");
    CHECK(needed > sizeof small);

    /* Use after free and double free of a graph. */
    CHECK_OK(ds_graph_free(g));
    CHECK_ERR(ds_graph_free(g), DS_STATUS_INVALID_HANDLE, "already freed");
    CHECK_ERR(ds_graph_num_ops(g, &n1), DS_STATUS_INVALID_HANDLE, "DsGraph");
    DsExecutor *ex = (DsExecutor *)1;
    CHECK_ERR(ds_executor_new(g, NULL, &ex), DS_STATUS_INVALID_HANDLE, "graph");
    CHECK(ex == NULL);
    CHECK_OK(ds_graph_free(g2));
    CHECK_OK(ds_graph_free(NULL));
    mlp_free(&m);
}

/* x + y with x, y f32[n, 3]. */
static DsGraph *add_graph(void) {
    DsGraphBuilder *b = NULL;
    CHECK_OK(ds_graph_builder_new(&b));
    int64_t d[2] = {-1, 3};
    const char *s[2] = {"n", NULL};
    DsValueId x = 0, y = 0;
    CHECK_OK(ds_graph_builder_input(b, "x", DS_DTYPE_F32, d, 2, s, &x));
    CHECK_OK(ds_graph_builder_input(b, "y", DS_DTYPE_F32, d, 2, s, &y));
    CHECK_OK(ds_graph_builder_output(b, "s", op1(b, "add", x, y, 0, 2)));
    DsGraph *g = NULL;
    CHECK_OK(ds_graph_builder_finish(b, &g));
    CHECK_OK(ds_graph_builder_free(b));
    return g;
}

static void test_bad_runs(void) {
    DsGraph *g = add_graph();
    DsExecOptions *o = NULL;
    CHECK_OK(ds_exec_options_new(&o));
    CHECK_ERR(ds_exec_options_set_opt_level(o, 3), DS_STATUS_INVALID_ARGUMENT, "opt_level&given 3");
    CHECK_ERR(ds_exec_options_set_opt_level(o, -1), DS_STATUS_INVALID_ARGUMENT, "opt_level");
    CHECK_ERR(ds_exec_options_set_inter_op_threads(o, -2), DS_STATUS_INVALID_ARGUMENT, "inter_op_threads&-2");
    CHECK_ERR(ds_exec_options_set_device(o, 7, 0), DS_STATUS_INVALID_ARGUMENT, "device_kind");
    CHECK_ERR(ds_exec_options_set_device(o, DS_DEVICE_CUDA, -1), DS_STATUS_INVALID_ARGUMENT, "device_index");
    CHECK_ERR(ds_exec_options_set_opt_level(NULL, 1), DS_STATUS_INVALID_HANDLE, "options");
    CHECK_ERR(ds_exec_options_new(NULL), DS_STATUS_NULL_POINTER, "out_options");
    DsExecutor *ex = NULL;
    CHECK_ERR(ds_executor_new(g, o, NULL), DS_STATUS_NULL_POINTER, "out_executor");
    CHECK_ERR(ds_executor_new(g, (const DsExecOptions *)g, &ex), DS_STATUS_INVALID_HANDLE, "expected a DsExecOptions");
    CHECK_OK(ds_executor_new(g, o, &ex));
    CHECK_OK(ds_exec_options_free(o));
    CHECK_OK(ds_graph_free(g));

    int64_t d2[2] = {2, 3}, d3[2] = {3, 3}, d7[2] = {2, 7};
    float v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    double vd[6] = {1, 2, 3, 4, 5, 6};
    DsTensor *a = NULL, *b3 = NULL, *b7 = NULL, *ad = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d2, 2, v, 6 * sizeof(float), &a));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d3, 2, v, 9 * sizeof(float), &b3));
    float v14[14] = {0};
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, d7, 2, v14, sizeof v14, &b7));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F64, d2, 2, vd, sizeof vd, &ad));

    const char *xy[2] = {"x", "y"}, *xz[2] = {"x", "z"}, *xx[2] = {"x", "x"}, *s1[1] = {"s"}, *nope[1] = {"nope"};
    const DsTensor *aa[2] = {a, a}, *ab3[2] = {a, b3}, *ab7[2] = {a, b7}, *aad[2] = {a, ad};
    DsTensor *out[1] = {(DsTensor *)1};
    CHECK_OK(ds_executor_run(ex, xy, aa, 2, s1, 1, out));
    float got[6] = {0};
    CHECK(floats(out[0], got, 6) == 6 && got[0] == 2.0f && got[5] == 12.0f);
    CHECK_OK(ds_tensor_free(out[0]));

    out[0] = (DsTensor *)1;
    CHECK_ERR(ds_executor_run(ex, xz, aa, 2, s1, 1, out), DS_STATUS_NOT_FOUND, "feed `z` names no input");
    CHECK(out[0] == NULL);
    CHECK_ERR(ds_executor_run(ex, xy, aa, 1, s1, 1, out), DS_STATUS_INVALID_ARGUMENT, "input `y`&not fed");
    CHECK_ERR(ds_executor_run(ex, xx, aa, 2, s1, 1, out), DS_STATUS_INVALID_ARGUMENT, "`x` is fed twice");
    CHECK_ERR(ds_executor_run(ex, xy, aad, 2, s1, 1, out), DS_STATUS_INVALID_DTYPE, "`y` expects f32[n, 3]&f64");
    CHECK_ERR(ds_executor_run(ex, xy, ab7, 2, s1, 1, out), DS_STATUS_SHAPE_MISMATCH, "`y`&dimension 1 must be 3");
    CHECK_ERR(ds_executor_run(ex, xy, ab3, 2, s1, 1, out), DS_STATUS_SHAPE_MISMATCH,
              "symbol `n` is 2 in another feed, 3 here");
    CHECK_ERR(ds_executor_run(ex, xy, aa, 2, nope, 1, out), DS_STATUS_NOT_FOUND, "no output `nope`");
    CHECK_ERR(ds_executor_run(ex, xy, aa, 2, s1, 1, NULL), DS_STATUS_NULL_POINTER, "out_tensors");
    CHECK_ERR(ds_executor_run(ex, NULL, aa, 2, s1, 1, out), DS_STATUS_NULL_POINTER, "feed_names");
    CHECK_ERR(ds_executor_run(ex, xy, NULL, 2, s1, 1, out), DS_STATUS_NULL_POINTER, "feed_tensors");
    CHECK_ERR(ds_executor_run(ex, xy, aa, 2, NULL, 1, out), DS_STATUS_NULL_POINTER, "fetch_names");
    const DsTensor *a_null[2] = {a, NULL};
    CHECK_ERR(ds_executor_run(ex, xy, a_null, 2, s1, 1, out), DS_STATUS_INVALID_HANDLE, "feed_tensors");
    const char *name_null[2] = {"x", NULL};
    CHECK_ERR(ds_executor_run(ex, name_null, aa, 2, s1, 1, out), DS_STATUS_NULL_POINTER, "feed_names");
    CHECK_ERR(ds_executor_run(NULL, xy, aa, 2, s1, 1, out), DS_STATUS_INVALID_HANDLE, "executor");

    /* Cancellation and statistics. */
    DsCancelToken *tok = NULL;
    CHECK_OK(ds_cancel_token_new(&tok));
    DsRunStats st = {sizeof(DsRunStats), -1, -1};
    CHECK_OK(ds_executor_run_with(ex, xy, aa, 2, s1, 1, tok, &st, out));
    CHECK(st.nodes_run == 1 && st.peak_bytes >= (int64_t)(6 * sizeof(float)));
    CHECK_OK(ds_tensor_free(out[0]));
    CHECK_OK(ds_cancel_token_cancel(tok));
    bool cancelled = false;
    CHECK_OK(ds_cancel_token_is_cancelled(tok, &cancelled));
    CHECK(cancelled);
    out[0] = (DsTensor *)1;
    CHECK_ERR(ds_executor_run_with(ex, xy, aa, 2, s1, 1, tok, NULL, out), DS_STATUS_CANCELLED, "stopped");
    CHECK(out[0] == NULL);
    CHECK_OK(ds_cancel_token_reset(tok));
    CHECK_OK(ds_cancel_token_is_cancelled(tok, &cancelled));
    CHECK(!cancelled);
    CHECK_OK(ds_executor_run_with(ex, xy, aa, 2, s1, 1, tok, NULL, out)); /* usable again */
    CHECK_OK(ds_tensor_free(out[0]));
    DsRunStats short_st = {4, 0, 0};
    CHECK_ERR(ds_executor_run_with(ex, xy, aa, 2, s1, 1, NULL, &short_st, out), DS_STATUS_INVALID_ARGUMENT,
              "struct_size is 4");
    CHECK_ERR(ds_executor_run_with(ex, xy, aa, 2, s1, 1, (const DsCancelToken *)a, NULL, out),
              DS_STATUS_INVALID_HANDLE, "expected a DsCancelToken");
    CHECK_ERR(ds_cancel_token_cancel(NULL), DS_STATUS_INVALID_HANDLE, "token");
    CHECK_OK(ds_cancel_token_free(tok));
    CHECK_ERR(ds_cancel_token_free(tok), DS_STATUS_INVALID_HANDLE, "already freed");
    CHECK_OK(ds_cancel_token_free(NULL));

    /* Use after free and double free of an executor. */
    CHECK_OK(ds_executor_free(ex));
    CHECK_ERR(ds_executor_run(ex, xy, aa, 2, s1, 1, out), DS_STATUS_INVALID_HANDLE, "DsExecutor");
    CHECK_ERR(ds_executor_free(ex), DS_STATUS_INVALID_HANDLE, "already freed");
    CHECK_OK(ds_executor_free(NULL));

    DsTensor *ts[] = {a, b3, b7, ad};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) CHECK_OK(ds_tensor_free(ts[i]));
}

/* ------------------------------------------------------------------ save and load */

static void test_save_load(void) {
    Mlp m = mlp_new();
    DsGraph *g = mlp_graph(&m);
    char path[] = "/tmp/ds_graph_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(ds_graph_save(g, path));
    DsGraph *loaded = NULL;
    CHECK_OK(ds_graph_load(path, &loaded));
    DsExecutor *a = NULL, *b = NULL;
    CHECK_OK(ds_executor_new(g, NULL, &a));
    CHECK_OK(ds_executor_new(loaded, NULL, &b));
    int64_t dx[2] = {5, IN};
    DsTensor *x = normal(dx, 2, 77);
    DsTensor *ya = run1(a, x, "y"), *yb = run1(b, x, "y");
    CHECK(ya && yb && same_bits(ya, yb));
    CHECK_OK(ds_tensor_free(ya));
    CHECK_OK(ds_tensor_free(yb));
    CHECK_OK(ds_tensor_free(x));
    CHECK_OK(ds_executor_free(a));
    CHECK_OK(ds_executor_free(b));
    CHECK_OK(ds_graph_free(loaded));

    /* A truncated file and a file of garbage are corrupt; the handle stays NULL. */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fclose(f);
        CHECK(truncate(path, len / 2) == 0);
    }
    loaded = (DsGraph *)0x1;
    CHECK_ERR(ds_graph_load(path, &loaded), DS_STATUS_CORRUPT_DATA, "truncated&bytes");
    CHECK(loaded == NULL);
    f = fopen(path, "wb");
    if (f) {
        fputs("not a graph at all, just text", f);
        fclose(f);
    }
    CHECK_ERR(ds_graph_load(path, &loaded), DS_STATUS_CORRUPT_DATA, path);
    unlink(path);
    CHECK_ERR(ds_graph_load(path, &loaded), DS_STATUS_NOT_FOUND, path);
    CHECK_ERR(ds_graph_load(NULL, &loaded), DS_STATUS_NULL_POINTER, "path");
    CHECK_ERR(ds_graph_save(g, NULL), DS_STATUS_NULL_POINTER, "path");
    CHECK_ERR(ds_graph_save(NULL, path), DS_STATUS_INVALID_HANDLE, "graph");
    CHECK_ERR(ds_graph_save(g, "/nonexistent-dir/x/graph.safetensors"), DS_STATUS_NOT_FOUND, "nonexistent-dir");
    CHECK_OK(ds_graph_free(g));
    mlp_free(&m);
}

int main(void) {
    uint64_t live_start = ds_live_objects();
    CHECK_OK(ds_check_abi(DS_ABI_VERSION));
    test_builder_mlp();
    test_trace_mlp();
    test_trace_errors();
    test_gradients();
    test_threads();
    test_bad_builder();
    test_bad_runs();
    test_save_load();
    CHECK(ds_live_objects() == live_start);
    ds_cpu_allocator_empty_cache(); /* cached blocks would show as "possibly lost" under valgrind */
    printf("test_graph_api: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

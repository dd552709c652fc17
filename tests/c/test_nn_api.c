/*
 * C ABI tests for layers and models: the layer registry and schemas, an MLP built layer by
 * layer with ds_graph_builder_layer, a DCN-v2 built by name with ds_model_build, both run
 * through ds_executor_* with known parameters fed by name and compared bit for bit with the
 * same computation through ds_op_call; every bad input with its message; no leaked handles.
 * Built and run (also under valgrind) by `make c-tests`. Prints "N passed, M failed".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepseek.h"

#define DS_CHECK_ERR_MESSAGES /* CHECK_ERR from check.h */
#include "check.h"

#define B 5

static DsTensor *normal(const int64_t *dims, size_t ndim, uint64_t seed) {
    DsTensor *t = NULL;
    CHECK_OK(ds_tensor_rand_normal(DS_DTYPE_F32, dims, ndim, 0.0, 0.5, seed, DS_DEVICE_CPU, 0, &t));
    return t;
}

static DsTensor *ids_tensor(const int64_t *v, int64_t rows, int64_t cols) {
    int64_t dims[2] = {rows, cols};
    DsTensor *t = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_I64, dims, 2, v, (size_t)(rows * cols) * sizeof(int64_t), &t));
    return t;
}

/* A one-output eager op with up to three inputs and an optional int or ints attribute. */
static DsTensor *op_at(int line, const char *name, const DsTensor *a, const DsTensor *b, const DsTensor *c,
                       const char *attr, const int64_t *vals, size_t nvals) {
    const DsTensor *in[3] = {a, b, c};
    DsTensor *out[1] = {NULL};
    DsAttrs *at = NULL;
    size_t n = 0;
    if (attr) {
        CHECK_OK(ds_attrs_create(&at));
        if (nvals == 0) CHECK_OK(ds_attrs_set_int(at, attr, vals[0]));
        else CHECK_OK(ds_attrs_set_ints(at, attr, vals, nvals));
    }
    DsStatus s = ds_op_call(name, in, c ? 3 : b ? 2 : 1, at, out, 1, &n);
    if (s != DS_STATUS_OK || n != 1) fail_at(line, name, ds_status_name(s));
    CHECK_OK(ds_attrs_free(at));
    return out[0];
}
#define OP(name, a, b, c) op_at(__LINE__, (name), (a), (b), (c), NULL, NULL, 0)
#define OPA(name, a, b, attr, vals, n) op_at(__LINE__, (name), (a), (b), NULL, (attr), (vals), (n))

static int same_bits(const DsTensor *a, const DsTensor *b) {
    float x[256], y[256];
    int64_t n = 0, m = 0;
    if (!a || !b || ds_tensor_numel(a, &n) != DS_STATUS_OK || ds_tensor_numel(b, &m) != DS_STATUS_OK) return 0;
    if (n != m || n <= 0 || n > 256) return 0;
    if (ds_tensor_copy_to(a, x, (size_t)n * sizeof(float)) != DS_STATUS_OK) return 0;
    if (ds_tensor_copy_to(b, y, (size_t)n * sizeof(float)) != DS_STATUS_OK) return 0;
    return memcmp(x, y, (size_t)n * sizeof(float)) == 0;
}

static void frees(DsTensor **ts, size_t n) {
    for (size_t i = 0; i < n; i++) CHECK_OK(ds_tensor_free(ts[i]));
}

static void test_registry(void) {
    size_t n = 0;
    CHECK_OK(ds_layer_count(&n));
    CHECK(n == 12);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        CHECK_OK(ds_layer_name(i, &name));
        if (name && (!strcmp(name, "cross_net") || !strcmp(name, "embedding_bag") || !strcmp(name, "fm"))) seen++;
    }
    CHECK(seen == 3);
    const char *name = NULL;
    CHECK_ERR(ds_layer_name(n, &name), DS_STATUS_OUT_OF_RANGE, "for 12 layers");
    size_t needed = 0;
    CHECK_ERR(ds_layer_schema("linear", NULL, 0, &needed), DS_STATUS_BUFFER_TOO_SMALL, "capacity");
    char *json = malloc(needed);
    CHECK_OK(ds_layer_schema("linear", json, needed, NULL));
    CHECK(strstr(json, "\"name\":\"out_features\"") && strstr(json, "\"required\":true") &&
          strstr(json, "kaiming_uniform"));
    free(json);
    CHECK_ERR(ds_layer_schema("lenear", NULL, 0, NULL), DS_STATUS_NOT_FOUND, "no layer named `lenear`");
}

/* An MLP 8-16-4 from one "mlp" layer; fed known weights by name; = linear/relu/linear. */
static void test_mlp_by_layers(void) {
    DsGraphBuilder *b = NULL;
    CHECK_OK(ds_graph_builder_new(&b));
    int64_t dx[2] = {-1, 8};
    const char *sx[2] = {"batch", NULL};
    DsValueId x = 0, y = 0;
    CHECK_OK(ds_graph_builder_input(b, "x", DS_DTYPE_F32, dx, 2, sx, &x));
    DsAttrs *a = NULL;
    CHECK_OK(ds_attrs_create(&a));
    int64_t widths[2] = {16, 4};
    CHECK_OK(ds_attrs_set_ints(a, "widths", widths, 2));
    size_t n_out = 0;
    CHECK_ERR(ds_graph_builder_layer(b, "mlp", "m", 1, &x, 1, a, &y, 0, &n_out), DS_STATUS_BUFFER_TOO_SMALL,
              "capacity");
    CHECK(n_out == 1);
    CHECK_OK(ds_graph_builder_layer(b, "mlp", "m", 1, &x, 1, a, &y, 1, &n_out));
    CHECK(n_out == 1);
    CHECK_OK(ds_graph_builder_output(b, "y", y));

    /* Bad input: each leaves the builder usable and names the problem. */
    DsValueId junk = 0;
    CHECK_ERR(ds_graph_builder_layer(b, "mlp", "m", 1, &x, 1, a, &junk, 1, &n_out), DS_STATUS_INVALID_ARGUMENT,
              "already has a parameter or input named `m/0/weight`");
    CHECK_ERR(ds_graph_builder_layer(b, "perceptron", "p", 1, &x, 1, a, &junk, 1, &n_out), DS_STATUS_NOT_FOUND,
              "no layer named `perceptron`");
    DsAttrs *bad = NULL;
    CHECK_OK(ds_attrs_create(&bad));
    CHECK_OK(ds_attrs_set_int(bad, "widths", 3));
    CHECK_ERR(ds_graph_builder_layer(b, "mlp", "p", 1, &x, 1, bad, &junk, 1, &n_out), DS_STATUS_INVALID_ARGUMENT,
              "`widths` must be ints, given int");
    CHECK_OK(ds_attrs_free(bad));
    CHECK_OK(ds_attrs_create(&bad));
    int64_t zero[2] = {16, 0};
    CHECK_OK(ds_attrs_set_ints(bad, "widths", zero, 2));
    CHECK_ERR(ds_graph_builder_layer(b, "mlp", "p", 1, &x, 1, bad, &junk, 1, &n_out), DS_STATUS_OUT_OF_RANGE,
              "`widths[1]` must be at least 1, given 0");
    CHECK_OK(ds_attrs_free(bad));
    CHECK_OK(ds_attrs_create(&bad));
    CHECK_OK(ds_attrs_set_int(bad, "outfeatures", 3));
    CHECK_ERR(ds_graph_builder_layer(b, "linear", "p", 1, &x, 1, bad, &junk, 1, &n_out), DS_STATUS_INVALID_ARGUMENT,
              "unknown attribute `outfeatures`");
    CHECK_OK(ds_attrs_free(bad));
    CHECK_ERR(ds_graph_builder_layer(NULL, "mlp", "p", 1, &x, 1, a, &junk, 1, &n_out), DS_STATUS_INVALID_HANDLE,
              "invalid handle `builder`");
    CHECK_ERR(ds_graph_builder_layer(b, NULL, "p", 1, &x, 1, a, &junk, 1, &n_out), DS_STATUS_NULL_POINTER,
              "layer_name");
    CHECK_ERR(ds_graph_builder_layer(b, "mlp", NULL, 1, &x, 1, a, &junk, 1, &n_out), DS_STATUS_NULL_POINTER,
              "prefix");
    CHECK_ERR(ds_graph_builder_layer(b, "mlp", "p", 1, NULL, 1, a, &junk, 1, &n_out), DS_STATUS_NULL_POINTER,
              "inputs");
    DsValueId nowhere = 999;
    CHECK_ERR(ds_graph_builder_layer(b, "mlp", "p", 1, &nowhere, 1, a, &junk, 1, &n_out),
              DS_STATUS_INVALID_ARGUMENT, "%999 is not defined");
    CHECK_OK(ds_attrs_free(a));

    DsGraph *g = NULL;
    CHECK_OK(ds_graph_builder_finish(b, &g));
    CHECK_OK(ds_graph_builder_free(b));
    size_t n_ops = 0;
    CHECK_OK(ds_graph_num_ops(g, &n_ops));
    CHECK(n_ops == 3); /* linear, relu, linear: the failed calls added nothing */
    DsExecutor *ex = NULL;
    CHECK_OK(ds_executor_new(g, NULL, &ex));
    CHECK_OK(ds_graph_free(g));

    int64_t dw1[2] = {16, 8}, db1[1] = {16}, dw2[2] = {4, 16}, db2[1] = {4}, dxx[2] = {B, 8};
    DsTensor *p[5] = {normal(dw1, 2, 1), normal(db1, 1, 2), normal(dw2, 2, 3), normal(db2, 1, 4), normal(dxx, 2, 5)};
    const char *names[5] = {"m/0/weight", "m/0/bias", "m/1/weight", "m/1/bias", "x"};
    const char *fetch[1] = {"y"};
    DsTensor *got[1] = {NULL};
    CHECK_OK(ds_executor_run(ex, names, (const DsTensor *const *)p, 5, fetch, 1, got));
    DsTensor *h = OP("linear", p[4], p[0], p[1]);
    DsTensor *r = OP("relu", h, NULL, NULL);
    DsTensor *want = OP("linear", r, p[2], p[3]);
    CHECK(same_bits(got[0], want));
    DsTensor *tmp[4] = {h, r, want, got[0]};
    frees(tmp, 4);
    frees(p, 5);
    CHECK_OK(ds_executor_free(ex));
}

/* DCN-v2 by name (2 dense, fields of 3 and 4 ids, width 2, one cross layer, deep [3]), fed
 * known parameters by name; logit and loss = the eager computation. */
static void test_dcn_by_name(void) {
    DsAttrs *a = NULL;
    CHECK_OK(ds_attrs_create(&a));
    int64_t vocab[2] = {3, 4}, deep[1] = {3};
    CHECK_OK(ds_attrs_set_int(a, "num_dense", 2));
    CHECK_OK(ds_attrs_set_ints(a, "vocab_sizes", vocab, 2));
    CHECK_OK(ds_attrs_set_int(a, "embed_dim", 2));
    CHECK_OK(ds_attrs_set_int(a, "cross_layers", 1));
    CHECK_OK(ds_attrs_set_ints(a, "mlp", deep, 1));
    CHECK_OK(ds_attrs_set_int(a, "seed", 7));
    DsGraph *g = NULL;
    CHECK_OK(ds_model_build("dcn_v2", a, &g));
    DsExecutor *ex = NULL;
    CHECK_OK(ds_executor_new(g, NULL, &ex));

    int64_t de0[2] = {3, 2}, de1[2] = {4, 2}, dcb[1] = {6}, dcw[2] = {6, 6}, ddw[2] = {3, 6}, ddb[1] = {3},
            dhw[2] = {1, 9}, dhb[1] = {1}, dd[2] = {B, 2};
    DsTensor *p[9] = {normal(de0, 2, 11), normal(de1, 2, 12), normal(dcb, 1, 13), normal(dcw, 2, 14),
                      normal(ddw, 2, 15), normal(ddb, 1, 16), normal(dhw, 2, 17), normal(dhb, 1, 18),
                      normal(dd, 2, 19)};
    int64_t ids[B * 2] = {0, 3, 2, 1, 1, 0, 2, 2, 0, 3}, col0[B], col1[B];
    for (int i = 0; i < B; i++) col0[i] = ids[2 * i], col1[i] = ids[2 * i + 1];
    float lab[B] = {1, 0, 0, 1, 1};
    int64_t dl[1] = {B};
    DsTensor *idt = ids_tensor(ids, B, 2), *label = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dl, 1, lab, sizeof lab, &label));
    const char *names[12] = {"emb/0/weight", "emb/1/weight", "cross/0/bias", "cross/0/weight", "deep/0/weight",
                             "deep/0/bias",  "head/weight",  "head/bias",    "dense",          "ids",
                             "label"};
    const DsTensor *feeds[11] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], idt, label};
    const char *fetch[3] = {"logit", "prob", "loss"};
    DsTensor *got[3] = {NULL, NULL, NULL};
    CHECK_OK(ds_executor_run(ex, names, feeds, 11, fetch, 3, got));

    DsTensor *c0 = ids_tensor(col0, B, 1), *c1 = ids_tensor(col1, B, 1);
    DsTensor *e0 = OP("embedding", p[0], c0, NULL), *e1 = OP("embedding", p[1], c1, NULL);
    int64_t one = 1, flat_shape[2] = {-1, 4}, vec_shape[1] = {-1};
    DsTensor *emb = OPA("concat", e0, e1, "dim", &one, 0);
    /* The one-op form the executor's lookup pass runs gives the same bits; a bad id names its field. */
    DsTensor *fields = OP("embedding_fields", idt, p[0], p[1]);
    CHECK(same_bits(fields, emb));
    int64_t bad_ids[2] = {2, 4};
    DsTensor *bad = ids_tensor(bad_ids, 1, 2), *none_out[1] = {NULL};
    const DsTensor *bad_in[3] = {bad, p[0], p[1]};
    size_t n_out = 0;
    CHECK_ERR(ds_op_call("embedding_fields", bad_in, 3, NULL, none_out, 1, &n_out), DS_STATUS_OUT_OF_RANGE,
              "embedding_fields&index 4 of field 1&0..4");
    CHECK(none_out[0] == NULL);
    DsTensor *flat = OPA("reshape", emb, NULL, "shape", flat_shape, 2);
    DsTensor *x0 = OPA("concat", p[8], flat, "dim", &one, 0);
    DsTensor *xw = OP("linear", x0, p[3], p[2]);
    DsTensor *gated = OP("mul", x0, xw, NULL);
    DsTensor *cross = OP("add", gated, x0, NULL);
    DsTensor *dl0 = OP("linear", x0, p[4], p[5]);
    DsTensor *dr = OP("relu", dl0, NULL, NULL);
    DsTensor *cat = OPA("concat", cross, dr, "dim", &one, 0);
    DsTensor *head = OP("linear", cat, p[6], p[7]);
    DsTensor *logit = OPA("reshape", head, NULL, "shape", vec_shape, 1);
    DsTensor *prob = OP("sigmoid", logit, NULL, NULL);
    DsTensor *loss = OP("binary_cross_entropy_with_logits", logit, label, NULL);
    CHECK(same_bits(got[0], logit));
    CHECK(same_bits(got[1], prob));
    CHECK(same_bits(got[2], loss));
    DsTensor *tmp[20] = {c0,  c1, e0,   e1,    emb,  flat, x0,   xw,  gated,  cross,
                         dl0, dr, cat, head, logit, prob, loss, idt, fields, bad};
    frees(tmp, 20);
    frees(got, 3);
    frees(p, 9);
    CHECK_OK(ds_tensor_free(label));
    CHECK_OK(ds_executor_free(ex));

    /* Graph autodiff over the built model: every parameter gets a gradient output. */
    DsGraph *gg = NULL;
    CHECK_OK(ds_graph_append_gradients(g, "loss", NULL, 0, &gg));
    CHECK_OK(ds_graph_free(gg));
    CHECK_OK(ds_graph_free(g));

    /* Bad input. */
    DsGraph *none = (DsGraph *)1;
    CHECK_ERR(ds_model_build("dcn_v3", a, &none), DS_STATUS_NOT_FOUND, "no model named `dcn_v3`");
    CHECK(none == NULL);
    CHECK_ERR(ds_model_build(NULL, a, &none), DS_STATUS_NULL_POINTER, "model_name");
    CHECK_ERR(ds_model_build("dcn_v2", a, NULL), DS_STATUS_NULL_POINTER, "out_graph");
    CHECK_OK(ds_attrs_set_string(a, "embed_dim", "16")); /* replaces the int */
    CHECK_ERR(ds_model_build("deepfm", a, &none), DS_STATUS_INVALID_ARGUMENT,
              "model `deepfm`: attribute `embed_dim` must be int, given string");
    CHECK_OK(ds_attrs_free(a));
    CHECK_OK(ds_attrs_create(&a));
    int64_t zero_vocab[2] = {3, 0};
    CHECK_OK(ds_attrs_set_ints(a, "vocab_sizes", zero_vocab, 2));
    CHECK_ERR(ds_model_build("logistic_regression", a, &none), DS_STATUS_OUT_OF_RANGE,
              "`vocab_sizes[1]` must be at least 1, given 0");
    CHECK_OK(ds_attrs_free(a));
    CHECK_OK(ds_attrs_create(&a));
    CHECK_OK(ds_attrs_set_int(a, "shape", 3));
    CHECK_ERR(ds_model_build("mlp_classifier", a, &none), DS_STATUS_INVALID_ARGUMENT, "unknown attribute `shape`");
    CHECK_OK(ds_attrs_free(a));
}

int main(void) {
    uint64_t live = ds_live_objects();
    test_registry();
    test_mlp_by_layers();
    test_dcn_by_name();
    CHECK(ds_live_objects() == live);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

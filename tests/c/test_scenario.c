/*
 * The shared cross-language scenario (tests/scenario/README.md) from C: build a small DCN-v2,
 * infer, train a few steps, export, save, reload, infer again; every number must equal the
 * expected files bit for bit. The C++, Go and Java tests run the same scenario.
 *
 * Usage: test_scenario [--write]   (--write regenerates the expected files; run from the repo root)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define DIR "tests/scenario/"
#define BATCH 8
#define NUM_DENSE 4
#define NUM_FIELDS 3
#define STEPS 5

static const int64_t VOCAB[NUM_FIELDS] = {11, 7, 5};
static const int64_t MLP[2] = {8, 4};
static const char *FEEDS[3] = {"dense", "ids", "label"};

static int write_mode;

/* Reads exactly `nbytes` of a data file; a missing or short file fails the test. */
static int read_file(const char *name, void *dst, size_t nbytes) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_at(__LINE__, "cannot open a scenario file", path);
        return 0;
    }
    size_t got = fread(dst, 1, nbytes, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != nbytes || extra) {
        fail_at(__LINE__, "scenario file has the wrong size", path);
        return 0;
    }
    return 1;
}

static void write_file(const char *name, const void *src, size_t nbytes) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s", name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(src, 1, nbytes, f) != nbytes || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* In write mode stores `got`; otherwise compares it bytewise with the stored file. */
static void expect_bytes(const char *name, const void *got, size_t nbytes) {
    if (write_mode) {
        write_file(name, got, nbytes);
        return;
    }
    unsigned char *want = malloc(nbytes);
    if (read_file(name, want, nbytes)) {
        if (memcmp(want, got, nbytes) == 0) g_pass++;
        else fail_at(__LINE__, "differs from the expected file", name);
    }
    free(want);
}

/* The inputs, made once by formula and then read from the files. */
static void make_inputs(float *dense, int64_t *ids, float *labels) {
    for (int i = 0; i < BATCH; i++) {
        for (int j = 0; j < NUM_DENSE; j++) dense[i * NUM_DENSE + j] = (float)sin(1.0 + i * NUM_DENSE + j);
        for (int f = 0; f < NUM_FIELDS; f++) ids[i * NUM_FIELDS + f] = (i * 5 + f * 3) % VOCAB[f];
        labels[i] = (float)(i % 3 == 0);
    }
}

static DsGraph *build_model(void) {
    DsAttrs *a = NULL;
    DsGraph *g = NULL;
    CHECK_OK(ds_attrs_create(&a));
    CHECK_OK(ds_attrs_set_int(a, "num_dense", NUM_DENSE));
    CHECK_OK(ds_attrs_set_ints(a, "vocab_sizes", VOCAB, NUM_FIELDS));
    CHECK_OK(ds_attrs_set_int(a, "embed_dim", 4));
    CHECK_OK(ds_attrs_set_int(a, "cross_layers", 2));
    CHECK_OK(ds_attrs_set_ints(a, "mlp", MLP, 2));
    CHECK_OK(ds_attrs_set_int(a, "seed", 42));
    CHECK_OK(ds_model_build("dcn_v2", a, &g));
    ds_attrs_free(a);
    return g;
}

/* Runs `graph` on dense + ids and copies its "prob" output into `prob`. */
static void predict(const DsGraph *graph, const DsTensor *dense, const DsTensor *ids, float *prob) {
    DsExecutor *ex = NULL;
    const char *names[2] = {"dense", "ids"};
    const DsTensor *in[2] = {dense, ids};
    const char *fetch[1] = {"prob"};
    DsTensor *out[1] = {NULL};
    memset(prob, 0, BATCH * sizeof(float));
    CHECK_OK(ds_executor_new(graph, NULL, &ex));
    CHECK_OK(ds_executor_run(ex, names, in, 2, fetch, 1, out));
    CHECK_OK(ds_tensor_copy_to(out[0], prob, BATCH * sizeof(float)));
    ds_tensor_free(out[0]);
    ds_executor_free(ex);
}

int main(int argc, char **argv) {
    write_mode = argc > 1 && strcmp(argv[1], "--write") == 0;
    float dense_v[BATCH * NUM_DENSE], labels_v[BATCH], prob[BATCH];
    int64_t ids_v[BATCH * NUM_FIELDS];
    double losses[STEPS];
    if (write_mode) {
        make_inputs(dense_v, ids_v, labels_v);
        write_file("dense.f32", dense_v, sizeof dense_v);
        write_file("ids.i64", ids_v, sizeof ids_v);
        write_file("labels.f32", labels_v, sizeof labels_v);
    } else if (!read_file("dense.f32", dense_v, sizeof dense_v) || !read_file("ids.i64", ids_v, sizeof ids_v) ||
               !read_file("labels.f32", labels_v, sizeof labels_v)) {
        return 1;
    }

    const int64_t dense_dims[2] = {BATCH, NUM_DENSE}, ids_dims[2] = {BATCH, NUM_FIELDS}, label_dims[1] = {BATCH};
    DsTensor *dense = NULL, *ids = NULL, *labels = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dense_dims, 2, dense_v, sizeof dense_v, &dense));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_I64, ids_dims, 2, ids_v, sizeof ids_v, &ids));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, label_dims, 1, labels_v, sizeof labels_v, &labels));

    /* 1. Build and infer with the seeded initial weights. */
    DsGraph *model = build_model();
    predict(model, dense, ids, prob);
    expect_bytes("expected_prob_initial.f32", prob, sizeof prob);

    /* 2. Train: Adam on dense parameters, row-wise Adagrad on the tables, the same batch each step. */
    DsTrainerOptions *o = NULL;
    DsTrainer *tr = NULL;
    CHECK_OK(ds_trainer_options_new(&o));
    CHECK_OK(ds_trainer_options_set_optimizer(o, "adam", NULL));
    CHECK_OK(ds_trainer_options_set_lr(o, 0.01));
    CHECK_OK(ds_trainer_options_set_sparse_optimizer(o, "rowwise_adagrad", NULL));
    CHECK_OK(ds_trainer_options_set_sparse_lr(o, 0.1));
    CHECK_OK(ds_trainer_options_set_seed(o, 1));
    CHECK_OK(ds_trainer_new(model, "loss", o, &tr));
    const DsTensor *batch[3] = {dense, ids, labels};
    for (int s = 0; s < STEPS; s++) CHECK_OK(ds_trainer_step(tr, FEEDS, batch, 3, &losses[s]));
    CHECK(losses[STEPS - 1] < losses[0]);
    expect_bytes("expected_losses.f64", losses, sizeof losses);

    /* 3. Export the inference graph and infer. */
    const char *outputs[1] = {"prob"};
    DsGraph *served = NULL;
    CHECK_OK(ds_trainer_export(tr, outputs, 1, &served));
    predict(served, dense, ids, prob);
    expect_bytes("expected_prob_trained.f32", prob, sizeof prob);

    /* 4. Save, reload, infer again: the same bits as before saving. */
    DsGraph *loaded = NULL;
    CHECK_OK(ds_graph_save(served, "build/scenario_c.dsg"));
    CHECK_OK(ds_graph_load("build/scenario_c.dsg", &loaded));
    predict(loaded, dense, ids, prob);
    if (!write_mode) expect_bytes("expected_prob_trained.f32", prob, sizeof prob);
    remove("build/scenario_c.dsg");

    ds_graph_free(loaded);
    ds_graph_free(served);
    ds_trainer_free(tr);
    ds_trainer_options_free(o);
    ds_graph_free(model);
    ds_tensor_free(dense);
    ds_tensor_free(ids);
    ds_tensor_free(labels);
    CHECK(ds_live_objects() == 0);
    printf("test_scenario: %d passed, %d failed%s\n", g_pass, g_fail, write_mode ? " (expected files written)" : "");
    return g_fail != 0;
}

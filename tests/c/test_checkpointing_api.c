/*
 * C ABI tests for activation checkpointing and memory statistics: an MLP classifier built
 * by name, trained for a few steps with and without DS_CHECKPOINT_SQRT; the losses agree
 * exactly (the recomputed gradients are bitwise equal) while the activation peak falls;
 * budget and boundary modes; reset of the peaks; every bad input with its message; no
 * leaked handles. Built and run (also under valgrind) by `make c-tests`.
 * Prints "N passed, M failed".
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "deepseek.h"

#define DS_CHECK_ERR_MESSAGES /* CHECK_ERR from check.h */
#include "check.h"

#define B 32
#define IN 16
#define WIDTH 64
#define LAYERS 9 /* hidden layers; with the output layer 10 linear layers: 4 segments */
#define CLASSES 4

static DsGraph *build_model(void) {
    DsAttrs *a = NULL;
    DsGraph *g = NULL;
    int64_t hidden[LAYERS];
    for (int i = 0; i < LAYERS; i++) hidden[i] = WIDTH;
    CHECK_OK(ds_attrs_create(&a));
    CHECK_OK(ds_attrs_set_int(a, "inputs", IN));
    CHECK_OK(ds_attrs_set_ints(a, "hidden", hidden, LAYERS));
    CHECK_OK(ds_attrs_set_int(a, "classes", CLASSES));
    CHECK_OK(ds_attrs_set_int(a, "seed", 5));
    CHECK_OK(ds_model_build("mlp_classifier", a, &g));
    ds_attrs_free(a);
    return g;
}

/* Trains `steps` steps on a fixed batch; returns the trainer (caller frees) and the losses. */
static DsTrainer *train(DsGraph *g, DsTrainerOptions *o, int steps, double *losses) {
    float x[B * IN];
    int64_t y[B];
    uint64_t s = 12345;
    for (int i = 0; i < B * IN; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    for (int i = 0; i < B; i++) y[i] = i % CLASSES;
    int64_t dx[2] = {B, IN}, dy[1] = {B};
    DsTensor *tx = NULL, *ty = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dx, 2, x, sizeof x, &tx));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_I64, dy, 1, y, sizeof y, &ty));
    DsTrainer *tr = NULL;
    CHECK_OK(ds_trainer_new(g, "loss", o, &tr));
    const char *names[2] = {"x", "label"};
    const DsTensor *in[2] = {tx, ty};
    for (int k = 0; k < steps && tr; k++) CHECK_OK(ds_trainer_step(tr, names, in, 2, &losses[k]));
    ds_tensor_free(tx);
    ds_tensor_free(ty);
    return tr;
}

static DsMemoryStats stats_of(DsTrainer *tr) {
    DsMemoryStats m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    CHECK_OK(ds_trainer_memory_stats(tr, &m));
    return m;
}

static void test_sqrt_checkpointing_and_stats(void) {
    DsGraph *g = build_model();
    DsTrainerOptions *plain = NULL, *ck = NULL;
    CHECK_OK(ds_trainer_options_new(&plain));
    CHECK_OK(ds_trainer_options_new(&ck));
    CHECK_OK(ds_trainer_options_set_checkpointing(ck, DS_CHECKPOINT_SQRT, 0, 0, NULL, 0));
    double a[3], b[3];
    DsTrainer *ta = train(g, plain, 3, a);
    DsTrainer *tb = train(g, ck, 3, b);
    for (int k = 0; k < 3; k++) CHECK(a[k] == b[k]);
    DsMemoryStats ma = stats_of(ta), mb = stats_of(tb);
    uint64_t params = (uint64_t)4 * (IN * WIDTH + WIDTH + (LAYERS - 1) * (WIDTH * WIDTH + WIDTH) + WIDTH * CLASSES + CLASSES);
    CHECK(ma.parameters == params && ma.parameters_peak == params);
    /* Adam: two moments per parameter and an i64 step count per parameter tensor. */
    CHECK(ma.optimizer_state == 2 * params + 8 * 2 * (LAYERS + 1));
    CHECK(ma.activations == 0 && ma.activations_peak > 0);
    CHECK(mb.activations_peak < ma.activations_peak);
    CHECK(ma.gradients_peak >= params);
    CHECK(ma.allocator_in_use > 0 && ma.allocator_peak >= ma.allocator_in_use);
    printf("activation peak: %llu bytes plain, %llu checkpointed\n", (unsigned long long)ma.activations_peak,
           (unsigned long long)mb.activations_peak);

    /* Reset: the per-step peaks fall to the current (zero) bytes; resident ones stay. */
    CHECK_OK(ds_trainer_reset_peak_memory(ta));
    DsMemoryStats r = stats_of(ta);
    CHECK(r.activations_peak == 0 && r.gradients_peak == 0 && r.workspace_peak == 0);
    CHECK(r.parameters_peak == params);

    /* An older, shorter struct gets only its fields. */
    struct { uint32_t struct_size; uint64_t parameters; uint64_t guard; } old;
    old.struct_size = 16;
    old.guard = 0xABCDu;
    CHECK_OK(ds_trainer_memory_stats(ta, (DsMemoryStats *)&old));
    CHECK(old.parameters == params && old.guard == 0xABCDu);

    /* Bad inputs. */
    DsMemoryStats tiny;
    tiny.struct_size = 4;
    CHECK_ERR(ds_trainer_memory_stats(ta, &tiny), DS_STATUS_INVALID_ARGUMENT, "struct_size");
    CHECK_ERR(ds_trainer_memory_stats(ta, NULL), DS_STATUS_NULL_POINTER, "out_stats");
    CHECK_ERR(ds_trainer_memory_stats(NULL, &tiny), DS_STATUS_INVALID_HANDLE, "trainer");
    CHECK_ERR(ds_trainer_reset_peak_memory(NULL), DS_STATUS_INVALID_HANDLE, "trainer");

    ds_trainer_free(ta);
    ds_trainer_free(tb);
    ds_trainer_options_free(plain);
    ds_trainer_options_free(ck);
    ds_graph_free(g);
}

static void test_budget_boundaries_and_bad_modes(void) {
    DsGraph *g = build_model();
    DsTrainerOptions *o = NULL;
    CHECK_OK(ds_trainer_options_new(&o));
    double base[2], got[2];
    DsTrainer *t0 = train(g, o, 2, base);
    ds_trainer_free(t0);

    /* A budget of about three layers' activations (two [batch, width] f32 each). */
    CHECK_OK(ds_trainer_options_set_checkpointing(o, DS_CHECKPOINT_BUDGET, 3 * 2 * B * WIDTH * 4, B, NULL, 0));
    DsTrainer *t1 = train(g, o, 2, got);
    CHECK(got[0] == base[0] && got[1] == base[1]);
    ds_trainer_free(t1);

    /* Boundaries by value id: %N must be a valid cut; a made-up name is an error naming it. */
    const char *bad_names[1] = {"no_such_value"};
    CHECK_OK(ds_trainer_options_set_checkpointing(o, DS_CHECKPOINT_BOUNDARIES, 0, 0, bad_names, 1));
    DsTrainer *t2 = NULL;
    CHECK_ERR(ds_trainer_new(g, "loss", o, &t2), DS_STATUS_INVALID_ARGUMENT, "no_such_value");
    CHECK(t2 == NULL);

    CHECK_ERR(ds_trainer_options_set_checkpointing(o, 7, 0, 0, NULL, 0), DS_STATUS_INVALID_ARGUMENT, "mode");
    CHECK_ERR(ds_trainer_options_set_checkpointing(o, DS_CHECKPOINT_BUDGET, 0, 1, NULL, 0),
              DS_STATUS_INVALID_ARGUMENT, "budget_bytes");
    CHECK_ERR(ds_trainer_options_set_checkpointing(o, DS_CHECKPOINT_BOUNDARIES, 0, 0, NULL, 0),
              DS_STATUS_INVALID_ARGUMENT, "boundar");
    CHECK_ERR(ds_trainer_options_set_checkpointing(o, DS_CHECKPOINT_BOUNDARIES, 0, 0, NULL, 2),
              DS_STATUS_NULL_POINTER, "boundaries");
    const char *with_null[1] = {NULL};
    CHECK_ERR(ds_trainer_options_set_checkpointing(o, DS_CHECKPOINT_BOUNDARIES, 0, 0, with_null, 1),
              DS_STATUS_NULL_POINTER, "boundaries");
    CHECK_ERR(ds_trainer_options_set_checkpointing(NULL, DS_CHECKPOINT_SQRT, 0, 0, NULL, 0),
              DS_STATUS_INVALID_HANDLE, "options");
    ds_trainer_options_free(o);
    ds_graph_free(g);
}

int main(void) {
    test_sqrt_checkpointing_and_stats();
    test_budget_boundaries_and_bad_modes();
    CHECK(ds_live_objects() == 0);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

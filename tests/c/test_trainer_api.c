/*
 * C ABI tests for trainers: a small DCN-v2 built by name trained with Adam + row-wise
 * Adagrad through ds_trainer_step, the loss falling; checkpoints written, a new trainer on
 * the directory resuming by itself; evaluation and the exported inference graph agreeing;
 * a NaN feed refused with nothing changed; every bad input with its message; no leaked
 * handles. Built and run (also under valgrind) by `make c-tests`. Prints "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deepseek.h"

#define DS_CHECK_ERR_MESSAGES /* CHECK_ERR from check.h */
#include "check.h"

#define B 16
#define DENSE 3
#define FIELDS 2
static const int64_t VOCAB[FIELDS] = {7, 5};

/* A deterministic batch: label = 1 when dense[0] + (id0 even) - (id1 odd) > 0.5. */
static void make_batch(uint64_t k, DsTensor **dense, DsTensor **ids, DsTensor **label) {
    float d[B * DENSE], y[B];
    int64_t id[B * FIELDS];
    uint64_t s = 0x9E3779B97F4A7C15ull * (k + 1);
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < DENSE; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            d[i * DENSE + j] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        }
        for (int f = 0; f < FIELDS; f++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            id[i * FIELDS + f] = (int64_t)((s >> 33) % (uint64_t)VOCAB[f]);
        }
        double z = d[i * DENSE] + (id[i * FIELDS] % 2 == 0) - (id[i * FIELDS + 1] % 2 == 1);
        y[i] = z > 0.5 ? 1.0f : 0.0f;
    }
    int64_t dd[2] = {B, DENSE}, di[2] = {B, FIELDS}, dy[1] = {B};
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dd, 2, d, sizeof d, dense));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_I64, di, 2, id, sizeof id, ids));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dy, 1, y, sizeof y, label));
}

static const char *FEEDS[3] = {"dense", "ids", "label"};

static DsStatus step(DsTrainer *tr, uint64_t k, double *loss) {
    DsTensor *d, *i, *y;
    make_batch(k, &d, &i, &y);
    const DsTensor *in[3] = {d, i, y};
    DsStatus s = ds_trainer_step(tr, FEEDS, in, 3, loss);
    ds_tensor_free(d);
    ds_tensor_free(i);
    ds_tensor_free(y);
    return s;
}

static DsGraph *build_model(void) {
    DsAttrs *a = NULL;
    DsGraph *g = NULL;
    int64_t mlp[1] = {8};
    CHECK_OK(ds_attrs_create(&a));
    CHECK_OK(ds_attrs_set_int(a, "num_dense", DENSE));
    CHECK_OK(ds_attrs_set_ints(a, "vocab_sizes", VOCAB, FIELDS));
    CHECK_OK(ds_attrs_set_int(a, "embed_dim", 4));
    CHECK_OK(ds_attrs_set_int(a, "cross_layers", 2));
    CHECK_OK(ds_attrs_set_ints(a, "mlp", mlp, 1));
    CHECK_OK(ds_attrs_set_int(a, "seed", 11));
    CHECK_OK(ds_model_build("dcn_v2", a, &g));
    ds_attrs_free(a);
    return g;
}

static DsTrainerOptions *options(const char *dir) {
    DsTrainerOptions *o = NULL;
    DsAttrs *sched = NULL;
    CHECK_OK(ds_trainer_options_new(&o));
    CHECK_OK(ds_trainer_options_set_optimizer(o, "adam", NULL));
    CHECK_OK(ds_trainer_options_set_sparse_optimizer(o, "rowwise_adagrad", NULL));
    CHECK_OK(ds_trainer_options_set_lr(o, 0.05));
    CHECK_OK(ds_attrs_create(&sched));
    CHECK_OK(ds_attrs_set_int(sched, "total_steps", 200));
    CHECK_OK(ds_trainer_options_set_schedule(o, "cosine", sched));
    ds_attrs_free(sched);
    CHECK_OK(ds_trainer_options_set_clip_norm(o, 5.0));
    CHECK_OK(ds_trainer_options_set_checkpoints(o, dir, 10, 2));
    CHECK_OK(ds_trainer_options_set_seed(o, 3));
    return o;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int count_checkpoints(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += strncmp(e->d_name, "ckpt-", 5) == 0;
    closedir(d);
    return n;
}

static void test_train_checkpoint_resume_export(void) {
    char dir[] = "/tmp/ds-trainer-c-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    DsGraph *g = build_model();
    DsTrainerOptions *o = options(dir);
    DsTrainer *tr = NULL;
    CHECK_OK(ds_trainer_new(g, "loss", o, &tr));
    size_t needed = 0;
    char text[1024];
    CHECK_OK(ds_trainer_report(tr, text, sizeof text, &needed));
    CHECK(needed == 1 && text[0] == '\0');
    double first = 0, last = 0, loss = 0;
    for (uint64_t k = 0; k < 60; k++) {
        CHECK_OK(step(tr, k % 8, &loss));
        if (k < 8) first += loss / 8;
        if (k >= 52) last += loss / 8;
    }
    CHECK(last < 0.8 * first);
    uint64_t n = 0;
    CHECK_OK(ds_trainer_step_count(tr, &n));
    CHECK(n == 60);
    CHECK_OK(ds_trainer_data_cursor(tr, &n));
    CHECK(n == 60 * B);
    CHECK(count_checkpoints(dir) == 2); /* every 10 steps, keep 2 */

    /* A NaN dense feature: refused, nothing changes. */
    DsTensor *d, *i, *y, *w_before = NULL, *w_after = NULL;
    make_batch(0, &d, &i, &y);
    CHECK_OK(ds_trainer_param(tr, "emb/0/weight", &w_before));
    float nan_row[DENSE] = {NAN, 0, 0};
    DsTensor *bad = NULL;
    int64_t dd[2] = {1, DENSE}, di[2] = {1, FIELDS}, dy[1] = {1};
    int64_t one_id[FIELDS] = {0, 0};
    float one_y[1] = {1};
    DsTensor *bad_ids = NULL, *bad_y = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dd, 2, nan_row, sizeof nan_row, &bad));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_I64, di, 2, one_id, sizeof one_id, &bad_ids));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dy, 1, one_y, sizeof one_y, &bad_y));
    const DsTensor *nan_in[3] = {bad, bad_ids, bad_y};
    CHECK_ERR(ds_trainer_step(tr, FEEDS, nan_in, 3, &loss), DS_STATUS_NON_FINITE, "nothing changed");
    CHECK(isnan(loss));
    CHECK_OK(ds_trainer_param(tr, "emb/0/weight", &w_after));
    float a[7 * 4], b[7 * 4];
    CHECK_OK(ds_tensor_copy_to(w_before, a, sizeof a));
    CHECK_OK(ds_tensor_copy_to(w_after, b, sizeof b));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_OK(ds_trainer_step_count(tr, &n));
    CHECK(n == 60);

    /* Bad feeds: a missing label, a parameter fed, an id outside its table. */
    const DsTensor *two[2] = {d, i};
    CHECK_ERR(ds_trainer_step(tr, FEEDS, two, 2, &loss), DS_STATUS_INVALID_ARGUMENT, "label");
    const char *param_feed[4] = {"dense", "ids", "label", "head/bias"};
    const DsTensor *four[4] = {d, i, y, y};
    CHECK_ERR(ds_trainer_step(tr, param_feed, four, 4, &loss), DS_STATUS_INVALID_ARGUMENT, "trainer owns");
    int64_t big_id[FIELDS] = {0, 99};
    DsTensor *oob = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_I64, di, 2, big_id, sizeof big_id, &oob));
    const DsTensor *oob_in[3] = {bad, oob, bad_y};
    CHECK(ds_trainer_step(tr, FEEDS, oob_in, 3, &loss) != DS_STATUS_OK);
    CHECK(strstr(ds_last_error(), "99") != NULL);

    /* Evaluate and export: the served graph needs no label and agrees with evaluation. */
    const char *prob[1] = {"prob"};
    DsTensor *eval_out[1] = {NULL}, *served_out[1] = {NULL};
    const DsTensor *in3[3] = {d, i, y};
    CHECK_OK(ds_trainer_evaluate(tr, FEEDS, in3, 3, prob, 1, eval_out));
    DsGraph *served = NULL;
    CHECK_OK(ds_trainer_export(tr, prob, 1, &served));
    DsExecutor *ex = NULL;
    CHECK_OK(ds_executor_new(served, NULL, &ex));
    CHECK_OK(ds_executor_run(ex, FEEDS, in3, 2, prob, 1, served_out));
    float pe[B], ps[B];
    CHECK_OK(ds_tensor_copy_to(eval_out[0], pe, sizeof pe));
    CHECK_OK(ds_tensor_copy_to(served_out[0], ps, sizeof ps));
    int close = 1;
    for (int k = 0; k < B; k++) close &= fabsf(pe[k] - ps[k]) <= 1e-6f && pe[k] > 0 && pe[k] < 1;
    CHECK(close);
    const char *nope[1] = {"nope"};
    DsGraph *none = NULL;
    CHECK_ERR(ds_trainer_export(tr, nope, 1, &none), DS_STATUS_NOT_FOUND, "nope");
    CHECK(none == NULL);

    /* Resume: a new trainer on the directory continues from step 60. */
    CHECK_OK(ds_trainer_save_checkpoint(tr));
    ds_trainer_free(tr);
    tr = NULL;
    CHECK_OK(ds_trainer_new(g, "loss", o, &tr));
    CHECK_OK(ds_trainer_step_count(tr, &n));
    CHECK(n == 60);
    CHECK_OK(ds_trainer_data_cursor(tr, &n));
    CHECK(n == 60 * B);
    CHECK_ERR(ds_trainer_report(tr, text, 4, &needed), DS_STATUS_BUFFER_TOO_SMALL, "capacity");
    CHECK(needed > 4 && needed < sizeof text);
    CHECK_OK(ds_trainer_report(tr, text, sizeof text, &needed));
    CHECK(strstr(text, "resumed from") != NULL && strstr(text, "step 60") != NULL);
    DsTensor *w_resumed = NULL;
    CHECK_OK(ds_trainer_param(tr, "emb/0/weight", &w_resumed));
    CHECK_OK(ds_tensor_copy_to(w_resumed, b, sizeof b));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_OK(ds_trainer_set_data_cursor(tr, 7));
    CHECK_OK(ds_trainer_data_cursor(tr, &n));
    CHECK(n == 7);

    DsTensor *all[] = {d, i, y, w_before, w_after, bad, bad_ids, bad_y, oob, eval_out[0], served_out[0], w_resumed};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) ds_tensor_free(all[k]);
    ds_executor_free(ex);
    ds_graph_free(served);
    ds_trainer_free(tr);
    ds_trainer_options_free(o);
    ds_graph_free(g);
    remove_dir(dir);
}

static void test_bad_options_and_handles(void) {
    DsTrainerOptions *o = NULL;
    DsAttrs *a = NULL;
    CHECK_OK(ds_trainer_options_new(&o));
    CHECK_ERR(ds_trainer_options_set_optimizer(o, "adamax", NULL), DS_STATUS_NOT_FOUND, "adamax");
    CHECK_OK(ds_attrs_create(&a));
    CHECK_OK(ds_attrs_set_float(a, "beta9", 0.5));
    CHECK_ERR(ds_trainer_options_set_optimizer(o, "adam", a), DS_STATUS_INVALID_ARGUMENT, "beta9");
    ds_attrs_free(a);
    CHECK_ERR(ds_trainer_options_set_lr(o, -1.0), DS_STATUS_INVALID_ARGUMENT, "learning rate");
    CHECK_ERR(ds_trainer_options_set_lr(o, NAN), DS_STATUS_INVALID_ARGUMENT, "learning rate");
    CHECK_ERR(ds_trainer_options_set_clip_norm(o, -2.0), DS_STATUS_INVALID_ARGUMENT, "max_norm");
    CHECK_ERR(ds_trainer_options_set_checkpoints(o, "/tmp/x", 5, 0), DS_STATUS_INVALID_ARGUMENT, "keep");
    CHECK_ERR(ds_trainer_options_set_checkpoints(o, "/tmp/x", -5, 1), DS_STATUS_INVALID_ARGUMENT, "every");
    CHECK_ERR(ds_trainer_options_set_schedule(o, "sawtooth", NULL), DS_STATUS_NOT_FOUND, "sawtooth");
    CHECK_ERR(ds_trainer_options_set_optimizer(o, NULL, NULL), DS_STATUS_NULL_POINTER, "name");
    CHECK_ERR(ds_trainer_options_set_lr(NULL, 0.1), DS_STATUS_INVALID_HANDLE, "options");

    DsGraph *g = build_model();
    DsTrainer *tr = NULL;
    CHECK_ERR(ds_trainer_new(g, "prob", o, &tr), DS_STATUS_INVALID_ARGUMENT, "prob");
    CHECK(tr == NULL);
    CHECK_ERR(ds_trainer_new(g, "nope", o, &tr), DS_STATUS_NOT_FOUND, "nope");
    CHECK_ERR(ds_trainer_new(NULL, "loss", o, &tr), DS_STATUS_INVALID_HANDLE, "graph");
    CHECK_ERR(ds_trainer_new(g, "loss", o, NULL), DS_STATUS_NULL_POINTER, "out_trainer");
    CHECK_ERR(ds_trainer_new((const DsGraph *)o, "loss", o, &tr), DS_STATUS_INVALID_HANDLE, "graph");
    CHECK_OK(ds_trainer_new(g, "loss", NULL, &tr)); /* defaults: Adam, no checkpoints */
    CHECK_ERR(ds_trainer_save_checkpoint(tr), DS_STATUS_INVALID_ARGUMENT, "without a checkpoint directory");
    DsTensor *p = NULL;
    CHECK_ERR(ds_trainer_param(tr, "nope", &p), DS_STATUS_NOT_FOUND, "nope");
    CHECK_ERR(ds_trainer_step(tr, FEEDS, NULL, 3, NULL), DS_STATUS_NULL_POINTER, "out_loss");
    double loss = 0;
    CHECK_ERR(ds_trainer_step(NULL, FEEDS, NULL, 0, &loss), DS_STATUS_INVALID_HANDLE, "trainer");
    ds_trainer_free(tr);
    CHECK(ds_trainer_free(NULL) == DS_STATUS_OK);
    ds_trainer_options_free(o);
    ds_graph_free(g);
}

int main(void) {
    uint64_t live = ds_live_objects();
    test_train_checkpoint_resume_export();
    test_bad_options_and_handles();
    CHECK(ds_live_objects() == live);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}

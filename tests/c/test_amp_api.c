/*
 * C ABI tests for mixed precision: eager autocast scopes (matmul in bf16 inside, f32 after
 * the pop, nesting restores, a disabled scope), bad dtypes and an unmatched pop with their
 * messages; a trainer with f16 autocast and loss scaling that trains and reports its scale;
 * bad amp options. No leaked handles. Prints "N passed, M failed".
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "deepseek.h"

#define DS_CHECK_ERR_MESSAGES /* CHECK_ERR from check.h */
#include "check.h"

/* The dtype of matmul(a, b) called now. */
static DsDtype matmul_dtype(DsTensor *a, DsTensor *b) {
    const DsTensor *ins[2] = {a, b};
    DsTensor *out = NULL;
    size_t n = 0;
    DsDtype d = 0;
    CHECK_OK(ds_op_call("matmul", ins, 2, NULL, &out, 1, &n));
    CHECK_OK(ds_tensor_dtype(out, &d));
    CHECK_OK(ds_tensor_free(out));
    return d;
}

static void eager_scopes(void) {
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {0.5f, -1, 2, 0.25f, 1, 1};
    int64_t da[2] = {2, 3}, db[2] = {3, 2};
    DsTensor *a = NULL, *b = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, da, 2, av, sizeof av, &a));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, db, 2, bv, sizeof bv, &b));
    DsDtype cur = -1;
    CHECK_OK(ds_autocast_dtype(&cur));
    CHECK(cur == 0);
    CHECK(matmul_dtype(a, b) == DS_DTYPE_F32);

    CHECK_OK(ds_autocast_push(DS_DTYPE_BF16));
    CHECK(matmul_dtype(a, b) == DS_DTYPE_BF16);
    CHECK_OK(ds_autocast_push(DS_DTYPE_F16));
    CHECK(matmul_dtype(a, b) == DS_DTYPE_F16);
    CHECK_OK(ds_autocast_push_disabled());
    CHECK(matmul_dtype(a, b) == DS_DTYPE_F32);
    CHECK_OK(ds_autocast_dtype(&cur));
    CHECK(cur == 0);
    CHECK_OK(ds_autocast_pop());
    CHECK_OK(ds_autocast_pop());
    CHECK_OK(ds_autocast_dtype(&cur));
    CHECK(cur == DS_DTYPE_BF16);
    /* A refused push leaves the open scopes as they were. */
    CHECK_ERR(ds_autocast_push(DS_DTYPE_I64), DS_STATUS_INVALID_DTYPE, "i64");
    CHECK_ERR(ds_autocast_push(DS_DTYPE_F64), DS_STATUS_INVALID_DTYPE, "f64");
    CHECK_ERR(ds_autocast_push(99), DS_STATUS_INVALID_DTYPE, "99");
    CHECK_OK(ds_autocast_dtype(&cur));
    CHECK(cur == DS_DTYPE_BF16);
    CHECK_OK(ds_autocast_pop());
    CHECK(matmul_dtype(a, b) == DS_DTYPE_F32);
    CHECK_ERR(ds_autocast_pop(), DS_STATUS_INVALID_ARGUMENT, "without an open scope");
    CHECK_ERR(ds_autocast_dtype(NULL), DS_STATUS_NULL_POINTER, "out_dtype");
    CHECK_OK(ds_tensor_free(a));
    CHECK_OK(ds_tensor_free(b));
}

#define N 16

/* y = x W^T + b, mse loss against a fixed linear target. */
static DsGraph *model(void) {
    DsGraphBuilder *gb = NULL;
    CHECK_OK(ds_graph_builder_new(&gb));
    int64_t dx[2] = {N, 4}, dy[2] = {N, 1}, dw[2] = {1, 4}, dbias[1] = {1};
    DsValueId x, y, w, bias, p, loss;
    CHECK_OK(ds_graph_builder_input(gb, "x", DS_DTYPE_F32, dx, 2, NULL, &x));
    CHECK_OK(ds_graph_builder_input(gb, "y", DS_DTYPE_F32, dy, 2, NULL, &y));
    float wv[4] = {0.1f, -0.2f, 0.05f, 0.3f}, bv[1] = {0};
    DsTensor *wt = NULL, *bt = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dw, 2, wv, sizeof wv, &wt));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dbias, 1, bv, sizeof bv, &bt));
    CHECK_OK(ds_graph_builder_param(gb, "w", wt, true, &w));
    CHECK_OK(ds_graph_builder_param(gb, "b", bt, true, &bias));
    DsValueId ins[3] = {x, w, bias};
    size_t n = 0;
    CHECK_OK(ds_graph_builder_op(gb, "linear", ins, 3, NULL, &p, 1, &n));
    DsValueId l_ins[2] = {p, y};
    CHECK_OK(ds_graph_builder_op(gb, "mse_loss", l_ins, 2, NULL, &loss, 1, &n));
    CHECK_OK(ds_graph_builder_output(gb, "loss", loss));
    DsGraph *g = NULL;
    CHECK_OK(ds_graph_builder_finish(gb, &g));
    CHECK_OK(ds_graph_builder_free(gb));
    CHECK_OK(ds_tensor_free(wt));
    CHECK_OK(ds_tensor_free(bt));
    return g;
}

static void trainer_amp(void) {
    DsTrainerOptions *o = NULL;
    CHECK_OK(ds_trainer_options_new(&o));
    CHECK_ERR(ds_trainer_options_set_amp(o, DS_DTYPE_I32, true), DS_STATUS_INVALID_DTYPE, "i32");
    CHECK_ERR(ds_trainer_options_set_amp(o, 42, false), DS_STATUS_INVALID_DTYPE, "autocast_dtype");
    CHECK_ERR(ds_trainer_options_set_amp(NULL, DS_DTYPE_F16, true), DS_STATUS_INVALID_HANDLE, "options");
    CHECK_OK(ds_trainer_options_set_amp(o, DS_DTYPE_F16, true));
    CHECK_OK(ds_trainer_options_set_lr(o, 0.05));
    DsGraph *g = model();
    DsTrainer *t = NULL;
    CHECK_OK(ds_trainer_new(g, "loss", o, &t));

    float xv[N * 4], yv[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 4; j++) xv[i * 4 + j] = (float)(((i * 7 + j * 3) % 11) - 5) / 5.0f;
        yv[i] = xv[i * 4] - 0.5f * xv[i * 4 + 2];
    }
    int64_t dx[2] = {N, 4}, dy[2] = {N, 1};
    DsTensor *x = NULL, *y = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dx, 2, xv, sizeof xv, &x));
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dy, 2, yv, sizeof yv, &y));
    const char *names[2] = {"x", "y"};
    const DsTensor *feeds[2] = {x, y};
    double first = 0, loss = 0;
    CHECK_OK(ds_trainer_step(t, names, feeds, 2, &first));
    for (int k = 0; k < 40; k++) CHECK_OK(ds_trainer_step(t, names, feeds, 2, &loss));
    CHECK(isfinite(loss) && loss < first);

    /* A poisoned batch is skipped (not refused) and the scale backs off. */
    xv[3] = INFINITY;
    DsTensor *bad = NULL;
    CHECK_OK(ds_tensor_from_data(DS_DTYPE_F32, dx, 2, xv, sizeof xv, &bad));
    const DsTensor *bad_feeds[2] = {bad, y};
    uint64_t before = 0, after = 0;
    CHECK_OK(ds_trainer_step_count(t, &before));
    CHECK_OK(ds_trainer_step(t, names, bad_feeds, 2, &loss));
    CHECK_OK(ds_trainer_step_count(t, &after));
    CHECK(after == before);

    size_t needed = 0;
    char report[1024];
    CHECK_OK(ds_trainer_report(t, report, sizeof report, &needed));
    CHECK(strstr(report, "autocast: ") != NULL);
    CHECK(strstr(report, "amp: autocast f16, loss scale 32768") != NULL);
    CHECK(strstr(report, "1 steps skipped") != NULL);
    if (!strstr(report, "loss scale 32768")) fprintf(stderr, "report: %s\n", report);

    CHECK_OK(ds_tensor_free(bad));
    CHECK_OK(ds_tensor_free(x));
    CHECK_OK(ds_tensor_free(y));
    CHECK_OK(ds_trainer_free(t));
    CHECK_OK(ds_graph_free(g));
    CHECK_OK(ds_trainer_options_free(o));
}

int main(void) {
    eager_scopes();
    trainer_amp();
    CHECK(ds_live_objects() == 0);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

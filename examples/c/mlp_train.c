/*
 * Eager training of a 784-512-512-10 MLP through the C ABI only: ops by name, backward,
 * gradients, and an SGD update. The twin of examples/mlp_train.rs: same seeds, same ops,
 * so `mlp_train N --hex` prints the same loss bits as the Rust example.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepseek.h"

#define TRY(call)                                                                               \
    do {                                                                                        \
        DsStatus s_ = (call);                                                                   \
        if (s_ != DS_STATUS_OK) {                                                               \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,            \
                    ds_status_name(s_), ds_last_error());                                       \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

enum { LAYERS = 3, BATCH = 128 };
static const int64_t DIMS[LAYERS + 1] = {784, 512, 512, 10};

/* Calls a one-output op. */
static DsTensor *op1(const char *name, const DsTensor *a, const DsTensor *b, const DsTensor *c) {
    const DsTensor *in[3] = {a, b, c};
    size_t n = c ? 3 : (b ? 2 : 1), n_out = 0;
    DsTensor *out = NULL;
    TRY(ds_op_call(name, in, n, NULL, &out, 1, &n_out));
    return out;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 20;
    int hex = argc > 2 && strcmp(argv[2], "--hex") == 0;
    TRY(ds_check_abi(DS_ABI_VERSION));
    TRY(ds_set_num_threads(2));

    DsTensor *params[2 * LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        int64_t wdims[2] = {DIMS[l + 1], DIMS[l]}, bdims[1] = {DIMS[l + 1]};
        double std = sqrt(2.0 / (double)DIMS[l]);
        TRY(ds_tensor_rand_normal(DS_DTYPE_F32, wdims, 2, 0.0, std, (uint64_t)l + 1, DS_DEVICE_CPU, 0, &params[2 * l]));
        TRY(ds_tensor_zeros(DS_DTYPE_F32, bdims, 1, DS_DEVICE_CPU, 0, &params[2 * l + 1]));
    }
    int64_t xdims[2] = {BATCH, DIMS[0]}, ydims[1] = {BATCH};
    DsTensor *x = NULL, *yf = NULL, *y = NULL, *lr = NULL;
    TRY(ds_tensor_rand_normal(DS_DTYPE_F32, xdims, 2, 0.0, 1.0, 100, DS_DEVICE_CPU, 0, &x));
    TRY(ds_tensor_rand_uniform(DS_DTYPE_F32, ydims, 1, 0.0, 10.0, 101, DS_DEVICE_CPU, 0, &yf));
    TRY(ds_tensor_cast(yf, DS_DTYPE_I64, &y));
    TRY(ds_tensor_full(DS_DTYPE_F32, NULL, 0, 0.01, DS_DEVICE_CPU, 0, &lr));

    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < 2 * LAYERS; i++) TRY(ds_tensor_set_requires_grad(params[i], true));
        DsTensor *h = x, *acts[2 * LAYERS];
        int n_acts = 0;
        for (int l = 0; l < LAYERS; l++) {
            h = acts[n_acts++] = op1("linear", h, params[2 * l], params[2 * l + 1]);
            if (l + 1 < LAYERS) h = acts[n_acts++] = op1("relu", h, NULL, NULL);
        }
        DsTensor *loss = op1("cross_entropy", h, y, NULL);
        TRY(ds_tensor_backward(loss, NULL, false));

        bool prev = false;
        TRY(ds_set_grad_enabled(false, &prev));
        for (int i = 0; i < 2 * LAYERS; i++) {
            DsTensor *g = NULL;
            TRY(ds_tensor_grad(params[i], &g));
            DsTensor *step_t = op1("mul", g, lr, NULL);
            DsTensor *next = op1("sub", params[i], step_t, NULL);
            TRY(ds_tensor_free(g));
            TRY(ds_tensor_free(step_t));
            TRY(ds_tensor_free(params[i]));
            params[i] = next;
        }
        TRY(ds_set_grad_enabled(prev, NULL));

        float v = 0;
        DsTensor *lf = NULL;
        TRY(ds_tensor_cast(loss, DS_DTYPE_F32, &lf));
        TRY(ds_tensor_copy_to(lf, &v, sizeof v));
        uint32_t bits;
        memcpy(&bits, &v, sizeof bits);
        if (hex)
            printf("%d %08" PRIx32 "\n", step, bits);
        else
            printf("step %3d  loss %.6f\n", step, v);
        TRY(ds_tensor_free(lf));
        TRY(ds_tensor_free(loss));
        for (int i = 0; i < n_acts; i++) TRY(ds_tensor_free(acts[i]));
    }
    for (int i = 0; i < 2 * LAYERS; i++) TRY(ds_tensor_free(params[i]));
    TRY(ds_tensor_free(x));
    TRY(ds_tensor_free(yf));
    TRY(ds_tensor_free(y));
    TRY(ds_tensor_free(lr));
    if (ds_live_objects() != 0) {
        fprintf(stderr, "leak: %" PRIu64 " live handles\n", ds_live_objects());
        return 1;
    }
    return 0;
}

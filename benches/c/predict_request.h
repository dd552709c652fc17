/*
 * One batch-1 request of the bindings' per-call benchmark, shared by the C baseline
 * (predict_overhead.c) and the Go benchmark's in-process C loop (bindings/go/internal/cloop):
 * run the scenario model's executor on feeds {"dense", "ids"}, copy "prob" out, free the output.
 */
#ifndef DEEPSEEK_PREDICT_REQUEST_H
#define DEEPSEEK_PREDICT_REQUEST_H

#include "deepseek.h"

/* The request; the first failing call's status (its message is in ds_last_error()). */
static inline DsStatus predict_request(const DsExecutor *ex, const DsTensor *const *feeds, float *prob) {
    static const char *names[2] = {"dense", "ids"}, *fetch[1] = {"prob"};
    DsTensor *out[1] = {NULL};
    DsStatus s = ds_executor_run(ex, names, feeds, 2, fetch, 1, out);
    if (s != DS_STATUS_OK) return s;
    s = ds_tensor_copy_to(out[0], prob, sizeof *prob);
    ds_tensor_free(out[0]);
    return s;
}

#endif

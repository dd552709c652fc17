// Package cloop runs the C baseline of the binding's per-call benchmark: the same batch-1
// request loop as benches/c/predict_overhead.c, written in C and called once per round, so
// a Go benchmark can interleave Go rounds with C rounds in one process and one time window.
// It is internal: only the benchmarks use it.
package cloop

/*
#cgo CFLAGS: -I${SRCDIR}/../../../../include
#cgo LDFLAGS: -L${SRCDIR}/../../../../target/release -ldeepseek -Wl,-rpath,${SRCDIR}/../../../../target/release
#include <stdint.h>
#include "deepseek.h"

// n requests on ex: run with the two feeds, copy "prob" out, free the output. Returns the
// first failure's status (the caller reads ds_last_error on this thread right after).
static DsStatus cloop_predict(const DsExecutor *ex, const DsTensor *dense, const DsTensor *ids, int64_t n) {
    static const char *names[2] = {"dense", "ids"}, *fetch[1] = {"prob"};
    const DsTensor *feeds[2] = {dense, ids};
    for (int64_t c = 0; c < n; c++) {
        DsTensor *out[1] = {NULL};
        float prob = 0;
        DsStatus s = ds_executor_run(ex, names, feeds, 2, fetch, 1, out);
        if (s != DS_STATUS_OK) return s;
        s = ds_tensor_copy_to(out[0], &prob, sizeof prob);
        ds_tensor_free(out[0]);
        if (s != DS_STATUS_OK) return s;
    }
    return DS_STATUS_OK;
}

// The status and message in one call, so no other call on this thread can replace them.
static const char *cloop_run(const DsExecutor *ex, const DsTensor *dense, const DsTensor *ids, int64_t n) {
    return cloop_predict(ex, dense, ids, n) == DS_STATUS_OK ? NULL : ds_last_error();
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Predict runs n batch-1 requests in C on the executor ex with the feed tensors dense and
// ids (C handles of the scenario model), all on the calling thread's C stack.
func Predict(ex, dense, ids unsafe.Pointer, n int) error {
	if msg := C.cloop_run((*C.DsExecutor)(ex), (*C.DsTensor)(dense), (*C.DsTensor)(ids), C.int64_t(n)); msg != nil {
		return errors.New(C.GoString(msg))
	}
	return nil
}

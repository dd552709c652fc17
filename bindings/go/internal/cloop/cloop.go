// Package cloop runs the C baseline of the binding's per-call benchmark: the request of
// benches/c/predict_overhead.c (benches/c/predict_request.h) in a C loop called once per
// round, so a Go benchmark can interleave Go rounds with C rounds in one process and one
// time window.
// It is internal: only the benchmarks use it.
package cloop

/*
#cgo CFLAGS: -I${SRCDIR}/../../../../include -I${SRCDIR}/../../../../benches/c
#cgo LDFLAGS: -L${SRCDIR}/../../../../target/release -ldeepseek -Wl,-rpath,${SRCDIR}/../../../../target/release
#include <stdint.h>
#include "predict_request.h"

// n requests on ex; the first failure's status.
static DsStatus cloop_predict(const DsExecutor *ex, const DsTensor *dense, const DsTensor *ids, int64_t n) {
    const DsTensor *feeds[2] = {dense, ids};
    for (int64_t c = 0; c < n; c++) {
        float prob = 0;
        DsStatus s = predict_request(ex, feeds, &prob);
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

// Package deepseek is the Go binding of libdeepseek's C ABI (include/deepseek.h).
//
// It adds Go's ownership and error idioms and nothing else; every number and every error
// message comes from the engine unchanged.
//
// Ownership: every object (Tensor, Attrs, Graph, ExecOptions, Executor, CancelToken,
// TrainerOptions, Trainer, CtrGenerator) wraps one C handle. Close frees it; Close is
// idempotent, safe from any goroutine, and waits for calls in flight on the object to
// return before freeing. After Close every method returns an error matching ErrClosed (and
// ErrInvalidHandle). A cleanup registered with the garbage collector frees objects dropped
// without Close as a safety net only, and counts them in LeakedHandles: close what you open.
// Parents are reference counted inside the engine, so close order never matters (an
// Executor keeps working after its Graph is closed).
//
// Errors: failures are *Error values carrying the engine's Status code and message; compare
// with errors.Is against the Err* sentinels (one per DS_STATUS_* code). The message is
// read inside the same C call that failed (ds_last_error is per OS thread and a goroutine
// may change threads between cgo calls).
//
// Concurrency: an Executor may be run from any number of goroutines at once; a Trainer
// serialises its calls inside the engine; builders (Attrs, ExecOptions, TrainerOptions)
// are meant for one goroutine at a time.
//
// Memory: data is copied into the engine (NewTensor) and out of it (CopyOut, Values) in
// one bulk copy per call; C never keeps a Go pointer.
package deepseek

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -ldeepseek -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"

//go:generate go run gen_consts.go

package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// DeviceKind is a DS_DEVICE_* code.
type DeviceKind int32

// Device kinds.
const (
	// DeviceCPU is the host CPU (the index is ignored).
	DeviceCPU DeviceKind = C.DS_DEVICE_CPU
	// DeviceCUDA is the NVIDIA GPU with the given index.
	DeviceCUDA DeviceKind = C.DS_DEVICE_CUDA
)

// ExecOptions says how NewExecutor compiles a graph (defaults: opt level 2, the CPU,
// inter-op threads 0). Fill it from one goroutine.
type ExecOptions struct{ h *handle }

func freeExecOptions(p unsafe.Pointer) { C.ds_exec_options_free((*C.DsExecOptions)(p)) }

// NewExecOptions creates compile options with the defaults.
func NewExecOptions() (*ExecOptions, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	var out *C.DsExecOptions
	var msg *C.char
	if err := statusError(C.dsgo_exec_options_new(&out, &msg), msg); err != nil {
		return nil, err
	}
	o := &ExecOptions{h: newHandle("ExecOptions", unsafe.Pointer(out), freeExecOptions)}
	attachSafetyNet(o, o.h)
	return o, nil
}

func (o *ExecOptions) handle() *handle {
	if o == nil {
		return nil
	}
	return o.h
}

func (o *ExecOptions) with(call func(p *C.DsExecOptions, msg **C.char) C.DsStatus) error {
	p, err := o.handle().acquire("ExecOptions")
	if err != nil {
		return err
	}
	defer o.h.release()
	var msg *C.char
	s := call((*C.DsExecOptions)(p), &msg)
	runtime.KeepAlive(o)
	return statusError(s, msg)
}

// SetOptLevel sets the optimisation level (0, 1 or 2).
func (o *ExecOptions) SetOptLevel(level int) error {
	return o.with(func(p *C.DsExecOptions, msg **C.char) C.DsStatus {
		return C.dsgo_exec_options_set_opt_level(p, C.int32_t(level), msg)
	})
}

// SetDevice sets the device the graph runs on.
func (o *ExecOptions) SetDevice(kind DeviceKind, index int) error {
	return o.with(func(p *C.DsExecOptions, msg **C.char) C.DsStatus {
		return C.dsgo_exec_options_set_device(p, C.DsDeviceKind(kind), C.int32_t(index), msg)
	})
}

// SetInterOpThreads sets how many independent nodes may run at once (0 = the pool size
// where the graph runs matrix products of unequal size side by side, else one at a time;
// 1 = one at a time, for services that already run one request per goroutine).
func (o *ExecOptions) SetInterOpThreads(n int) error {
	return o.with(func(p *C.DsExecOptions, msg **C.char) C.DsStatus {
		return C.dsgo_exec_options_set_inter_op_threads(p, C.int32_t(n), msg)
	})
}

// Close frees the options (executors made with them are unaffected). Idempotent; always nil.
func (o *ExecOptions) Close() error {
	o.handle().close()
	return nil
}

// acquireExecOptions is acquire for optional options: nil means the defaults (C NULL).
func acquireExecOptions(o *ExecOptions) (*C.DsExecOptions, func(), error) {
	if o == nil {
		return nil, func() {}, nil
	}
	p, err := o.h.acquire("ExecOptions")
	if err != nil {
		return nil, nil, err
	}
	return (*C.DsExecOptions)(p), func() { o.h.release(); runtime.KeepAlive(o) }, nil
}

// Executor is a compiled graph, runnable from any number of goroutines at once.
type Executor struct{ h *handle }

func freeExecutor(p unsafe.Pointer) { C.ds_executor_free((*C.DsExecutor)(p)) }

// NewExecutor compiles g with opts (nil = the defaults). g and opts may be closed right after.
func NewExecutor(g *Graph, opts *ExecOptions) (*Executor, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	gp, err := g.handle().acquire("Graph")
	if err != nil {
		return nil, err
	}
	defer g.h.release()
	op, done, err := acquireExecOptions(opts)
	if err != nil {
		return nil, err
	}
	defer done()
	var out *C.DsExecutor
	var msg *C.char
	s := C.dsgo_executor_new((*C.DsGraph)(gp), op, &out, &msg)
	runtime.KeepAlive(g)
	if err := statusError(s, msg); err != nil {
		return nil, err
	}
	e := &Executor{h: newHandle("Executor", unsafe.Pointer(out), freeExecutor)}
	attachSafetyNet(e, e.h)
	return e, nil
}

func (e *Executor) handle() *handle {
	if e == nil {
		return nil
	}
	return e.h
}

// Feed names an input of a run or a training step.
type Feed struct {
	// Name is the graph input (or parameter) to feed.
	Name string
	// Tensor is its value; it may be shared between concurrent runs.
	Tensor *Tensor
}

// RunStats is what a run measured (see ds_executor_run_with).
type RunStats struct {
	// NodesRun is the number of op nodes executed.
	NodesRun int64
	// PeakBytes is the most bytes held at once by the values the run computed.
	PeakBytes int64
}

// RunOptions are the optional parts of RunWith.
type RunOptions struct {
	// Cancel, if not nil, is the token the run checks; cancelling it stops every run using it.
	// When the context is cancellable too, its cancellation cancels this token.
	Cancel *CancelToken
	// Stats, if not nil, receives what the run measured (counting bytes costs a little).
	Stats *RunStats
}

// testHookRunAcquired, when set by a test, runs after Run has registered itself on the
// executor and before it enters C, so a test can hold runs in flight while it closes.
var testHookRunAcquired func()

// Run feeds the named tensors, runs the graph and returns new tensors for the fetched
// outputs, in order (close them). Safe from many goroutines at once.
//
// Cancellation: when ctx can be cancelled, a cancellation token is passed to the engine and
// context.AfterFunc cancels it when ctx is done; the engine checks it between levels of
// nodes. A run stopped that way returns an *Error with Code StatusCancelled that matches
// both ErrCancelled and ctx.Err() (context.Canceled or context.DeadlineExceeded) under
// errors.Is. A ctx already done when Run is called stops the run before its first node.
// context.Background() costs nothing extra.
func (e *Executor) Run(ctx context.Context, feeds []Feed, fetches []string) ([]*Tensor, error) {
	return e.RunWith(ctx, feeds, fetches, nil)
}

// RunWith is Run with options (a shared cancellation token, run statistics); opts may be nil.
func (e *Executor) RunWith(ctx context.Context, feeds []Feed, fetches []string, opts *RunOptions) ([]*Tensor, error) {
	ep, err := e.handle().acquire("Executor")
	if err != nil {
		return nil, err
	}
	defer e.h.release()
	if testHookRunAcquired != nil {
		testHookRunAcquired()
	}
	sc := getScratch()
	defer sc.put()
	if err := sc.bind(feeds, fetches); err != nil {
		return nil, err
	}
	defer releaseFeeds(feeds)

	var token *C.DsCancelToken
	var userToken *CancelToken
	var stats *C.DsRunStats
	if opts != nil {
		userToken = opts.Cancel
		if opts.Stats != nil {
			stats = &C.DsRunStats{struct_size: C.uint32_t(unsafe.Sizeof(C.DsRunStats{}))}
		}
	}
	if userToken != nil {
		tp, err := userToken.handle().acquire("CancelToken")
		if err != nil {
			return nil, err
		}
		defer userToken.h.release()
		token = (*C.DsCancelToken)(tp)
	}
	if ctx.Done() != nil {
		if token == nil {
			// A variable of its own: C writes through its address, which moves it to the
			// heap, and only runs with a context should pay for that.
			var created *C.DsCancelToken
			var msg *C.char
			if err := statusError(C.dsgo_cancel_token_new(&created, &msg), msg); err != nil {
				return nil, err
			}
			token = created
			defer C.ds_cancel_token_free(token)
		}
		fired := make(chan struct{})
		cancelToken := token
		stop := context.AfterFunc(ctx, func() {
			var msg *C.char
			_ = statusError(C.dsgo_cancel_token_cancel(cancelToken, &msg), msg) // cannot fail on a live token
			close(fired)
		})
		// Runs before the token is freed: a cancellation already under way must finish first.
		defer func() {
			if !stop() {
				<-fired
			}
		}()
		if ctx.Err() != nil { // already done: do not race the AfterFunc goroutine
			var msg *C.char
			_ = statusError(C.dsgo_cancel_token_cancel(token, &msg), msg)
		}
	}

	s := C.dsgo_executor_run((*C.DsExecutor)(ep), sc.feedBlob(), sc.feedPtrs(), C.size_t(len(feeds)),
		sc.fetchBlob(), C.size_t(len(fetches)), token, stats, sc.outPtr(), sc.msgPtr())
	runtime.KeepAlive(sc)
	runtime.KeepAlive(feeds)
	runtime.KeepAlive(e)
	if err := statusError(s, *sc.msg); err != nil {
		if s == C.DS_STATUS_CANCELLED && ctx.Err() != nil {
			err.(*Error).cause = ctx.Err()
		}
		return nil, err
	}
	if stats != nil {
		opts.Stats.NodesRun = int64(stats.nodes_run)
		opts.Stats.PeakBytes = int64(stats.peak_bytes)
	}
	return wrapTensors(sc.out[:len(fetches)]), nil
}

// Close frees the executor after every run in flight on it returns; runs started after
// Close return ErrClosed. Tensors it returned stay valid. Idempotent; always nil.
func (e *Executor) Close() error {
	e.handle().close()
	return nil
}

// CancelToken is a cancellation flag shared by the runs given it (RunOptions.Cancel).
type CancelToken struct{ h *handle }

func freeCancelToken(p unsafe.Pointer) { C.ds_cancel_token_free((*C.DsCancelToken)(p)) }

// NewCancelToken creates a token, not cancelled.
func NewCancelToken() (*CancelToken, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	var out *C.DsCancelToken
	var msg *C.char
	if err := statusError(C.dsgo_cancel_token_new(&out, &msg), msg); err != nil {
		return nil, err
	}
	t := &CancelToken{h: newHandle("CancelToken", unsafe.Pointer(out), freeCancelToken)}
	attachSafetyNet(t, t.h)
	return t, nil
}

func (t *CancelToken) handle() *handle {
	if t == nil {
		return nil
	}
	return t.h
}

func (t *CancelToken) with(call func(p *C.DsCancelToken, msg **C.char) C.DsStatus) error {
	p, err := t.handle().acquire("CancelToken")
	if err != nil {
		return err
	}
	defer t.h.release()
	var msg *C.char
	s := call((*C.DsCancelToken)(p), &msg)
	runtime.KeepAlive(t)
	return statusError(s, msg)
}

// Cancel asks every run using the token to stop; later runs stop at once until Reset.
func (t *CancelToken) Cancel() error {
	return t.with(func(p *C.DsCancelToken, msg **C.char) C.DsStatus { return C.dsgo_cancel_token_cancel(p, msg) })
}

// Reset clears the flag so the token can serve new runs.
func (t *CancelToken) Reset() error {
	return t.with(func(p *C.DsCancelToken, msg **C.char) C.DsStatus { return C.dsgo_cancel_token_reset(p, msg) })
}

// IsCancelled reports whether the token is cancelled.
func (t *CancelToken) IsCancelled() (bool, error) {
	var v C.bool
	err := t.with(func(p *C.DsCancelToken, msg **C.char) C.DsStatus {
		return C.dsgo_cancel_token_is_cancelled(p, &v, msg)
	})
	return bool(v), err
}

// Close frees the token after every run using it through this binding returns. Idempotent; always nil.
func (t *CancelToken) Close() error {
	t.handle().close()
	return nil
}

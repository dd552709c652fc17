package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// TrainerOptions says how to train (defaults: Adam, learning rate 1e-3, constant schedule,
// no clipping, no checkpoints, executor defaults, seed 0). Fill it from one goroutine.
type TrainerOptions struct{ h *handle }

func freeTrainerOptions(p unsafe.Pointer) { C.ds_trainer_options_free((*C.DsTrainerOptions)(p)) }

// NewTrainerOptions creates trainer options with the defaults.
func NewTrainerOptions() (*TrainerOptions, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	var out *C.DsTrainerOptions
	var msg *C.char
	if err := statusError(C.dsgo_trainer_options_new(&out, &msg), msg); err != nil {
		return nil, err
	}
	o := &TrainerOptions{h: newHandle("TrainerOptions", unsafe.Pointer(out), freeTrainerOptions)}
	attachSafetyNet(o, o.h)
	return o, nil
}

func (o *TrainerOptions) handle() *handle {
	if o == nil {
		return nil
	}
	return o.h
}

func (o *TrainerOptions) with(call func(p *C.DsTrainerOptions, msg **C.char) C.DsStatus) error {
	p, err := o.handle().acquire("TrainerOptions")
	if err != nil {
		return err
	}
	defer o.h.release()
	var msg *C.char
	s := call((*C.DsTrainerOptions)(p), &msg)
	runtime.KeepAlive(o)
	return statusError(s, msg)
}

// withNamed is with for setters taking a name (nil name bytes = C NULL) and optional attrs.
func (o *TrainerOptions) withNamed(name []byte, attrs *Attrs,
	call func(p *C.DsTrainerOptions, n *C.char, a *C.DsAttrs, msg **C.char) C.DsStatus) error {
	a, done, err := acquireAttrs(attrs)
	if err != nil {
		return err
	}
	defer done()
	var n *C.char
	if name != nil {
		n = (*C.char)(unsafe.Pointer(&name[0]))
	}
	err = o.with(func(p *C.DsTrainerOptions, msg **C.char) C.DsStatus { return call(p, n, a, msg) })
	runtime.KeepAlive(name)
	return err
}

// SetOptimizer sets the optimizer of dense parameters by name ("sgd", "adam", "adamw",
// "adagrad", "rowwise_adagrad", "lazy_adam") with attrs (nil = its defaults).
func (o *TrainerOptions) SetOptimizer(name string, attrs *Attrs) error {
	n, err := cString(name)
	if err != nil {
		return err
	}
	return o.withNamed(n, attrs, func(p *C.DsTrainerOptions, n *C.char, a *C.DsAttrs, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_optimizer(p, n, a, msg)
	})
}

// SetSparseOptimizer sets the optimizer of embedding tables; "" goes back to using the
// dense optimizer for them.
func (o *TrainerOptions) SetSparseOptimizer(name string, attrs *Attrs) error {
	var n []byte
	if name != "" {
		var err error
		if n, err = cString(name); err != nil {
			return err
		}
	}
	return o.withNamed(n, attrs, func(p *C.DsTrainerOptions, n *C.char, a *C.DsAttrs, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_sparse_optimizer(p, n, a, msg)
	})
}

// SetSchedule sets the learning-rate schedule by name ("constant", "step", "cosine",
// "warmup_cosine", ...) with attrs.
func (o *TrainerOptions) SetSchedule(name string, attrs *Attrs) error {
	n, err := cString(name)
	if err != nil {
		return err
	}
	return o.withNamed(n, attrs, func(p *C.DsTrainerOptions, n *C.char, a *C.DsAttrs, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_schedule(p, n, a, msg)
	})
}

// SetLR sets the base learning rate.
func (o *TrainerOptions) SetLR(lr float64) error {
	return o.with(func(p *C.DsTrainerOptions, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_lr(p, C.double(lr), msg)
	})
}

// SetSparseLR sets the sparse optimizer's base learning rate (negative = use the dense rate).
func (o *TrainerOptions) SetSparseLR(lr float64) error {
	return o.with(func(p *C.DsTrainerOptions, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_sparse_lr(p, C.double(lr), msg)
	})
}

// SetClipNorm clips gradients to a global L2 norm (0 turns clipping off).
func (o *TrainerOptions) SetClipNorm(maxNorm float64) error {
	return o.with(func(p *C.DsTrainerOptions, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_clip_norm(p, C.double(maxNorm), msg)
	})
}

// SetCheckpoints sets the checkpoint directory ("" = none), a checkpoint every `every`
// steps (0 = only SaveCheckpoint) and how many to keep.
func (o *TrainerOptions) SetCheckpoints(dir string, every, keep int64) error {
	var d []byte
	if dir != "" {
		var err error
		if d, err = cString(dir); err != nil {
			return err
		}
	}
	return o.withNamed(d, nil, func(p *C.DsTrainerOptions, n *C.char, _ *C.DsAttrs, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_checkpoints(p, n, C.int64_t(every), C.int64_t(keep), msg)
	})
}

// SetExec sets how the trainer's executors compile (copied; nil = the defaults).
func (o *TrainerOptions) SetExec(exec *ExecOptions) error {
	x, done, err := acquireExecOptions(exec)
	if err != nil {
		return err
	}
	defer done()
	return o.with(func(p *C.DsTrainerOptions, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_exec(p, x, msg)
	})
}

// SetSeed sets the seed of the trainer's random generator.
func (o *TrainerOptions) SetSeed(seed uint64) error {
	return o.with(func(p *C.DsTrainerOptions, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_options_set_seed(p, C.uint64_t(seed), msg)
	})
}

// Close frees the options (trainers made with them are unaffected). Idempotent; always nil.
func (o *TrainerOptions) Close() error {
	o.handle().close()
	return nil
}

// Trainer trains a graph's scalar loss. The engine runs one call at a time per trainer
// (concurrent calls wait), so it may be shared between goroutines.
type Trainer struct{ h *handle }

func freeTrainer(p unsafe.Pointer) { C.ds_trainer_free((*C.DsTrainer)(p)) }

// NewTrainer creates a trainer for g minimising its output loss with opts (nil = the
// defaults); g and opts may be closed right after. With a checkpoint directory holding
// checkpoints it resumes (see Report).
func NewTrainer(g *Graph, loss string, opts *TrainerOptions) (*Trainer, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	gp, err := g.handle().acquire("Graph")
	if err != nil {
		return nil, err
	}
	defer g.h.release()
	var op *C.DsTrainerOptions
	if opts != nil {
		p, err := opts.h.acquire("TrainerOptions")
		if err != nil {
			return nil, err
		}
		defer opts.h.release()
		op = (*C.DsTrainerOptions)(p)
	}
	l, err := cString(loss)
	if err != nil {
		return nil, err
	}
	var out *C.DsTrainer
	var msg *C.char
	s := C.dsgo_trainer_new((*C.DsGraph)(gp), (*C.char)(unsafe.Pointer(&l[0])), op, &out, &msg)
	runtime.KeepAlive(l)
	runtime.KeepAlive(g)
	runtime.KeepAlive(opts)
	if err := statusError(s, msg); err != nil {
		return nil, err
	}
	t := &Trainer{h: newHandle("Trainer", unsafe.Pointer(out), freeTrainer)}
	attachSafetyNet(t, t.h)
	return t, nil
}

func (t *Trainer) handle() *handle {
	if t == nil {
		return nil
	}
	return t.h
}

// with runs call with the trainer's C handle registered in flight.
func (t *Trainer) with(call func(p *C.DsTrainer, msg **C.char) C.DsStatus) error {
	p, err := t.handle().acquire("Trainer")
	if err != nil {
		return err
	}
	defer t.h.release()
	var msg *C.char
	s := call((*C.DsTrainer)(p), &msg)
	runtime.KeepAlive(t)
	return statusError(s, msg)
}

// Step runs one training step on feeds and returns the loss (ErrNonFinite: the step was
// refused and changed nothing).
func (t *Trainer) Step(feeds []Feed) (float64, error) {
	sc := getScratch()
	defer sc.put()
	if err := sc.bind(feeds, nil); err != nil {
		return 0, err
	}
	defer releaseFeeds(feeds)
	var loss C.double
	err := t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_step(p, sc.feedBlob(), sc.feedPtrs(), C.size_t(len(feeds)), &loss, msg)
	})
	runtime.KeepAlive(sc)
	runtime.KeepAlive(feeds)
	return float64(loss), err
}

// Evaluate runs the forward graph with the current parameters and returns new tensors for
// the fetched outputs, in order.
func (t *Trainer) Evaluate(feeds []Feed, fetches []string) ([]*Tensor, error) {
	sc := getScratch()
	defer sc.put()
	if err := sc.bind(feeds, fetches); err != nil {
		return nil, err
	}
	defer releaseFeeds(feeds)
	err := t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_evaluate(p, sc.feedBlob(), sc.feedPtrs(), C.size_t(len(feeds)),
			sc.fetchBlob(), C.size_t(len(fetches)), sc.outPtr(), msg)
	})
	runtime.KeepAlive(sc)
	runtime.KeepAlive(feeds)
	if err != nil {
		return nil, err
	}
	return wrapTensors(sc.out[:len(fetches)]), nil
}

// Export returns an inference-only graph computing the named outputs with the current
// weights frozen in, ready for NewExecutor or Graph.Save.
func (t *Trainer) Export(outputs ...string) (*Graph, error) {
	blob, err := nameBlob(outputs)
	if err != nil {
		return nil, err
	}
	var out *C.DsGraph
	err = t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_export(p, (*C.char)(unsafe.Pointer(&blob[0])), C.size_t(len(outputs)), &out, msg)
	})
	runtime.KeepAlive(blob)
	if err != nil {
		return nil, err
	}
	return wrapGraph(out), nil
}

// SaveCheckpoint writes a checkpoint now.
func (t *Trainer) SaveCheckpoint() error {
	return t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus { return C.dsgo_trainer_save_checkpoint(p, msg) })
}

// StepCount returns the number of optimizer steps taken (restored on resume).
func (t *Trainer) StepCount() (uint64, error) {
	var v C.uint64_t
	err := t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus { return C.dsgo_trainer_step_count(p, &v, msg) })
	return uint64(v), err
}

// DataCursor returns the samples consumed so far (saved in checkpoints).
func (t *Trainer) DataCursor() (uint64, error) {
	var v C.uint64_t
	err := t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus { return C.dsgo_trainer_data_cursor(p, &v, msg) })
	return uint64(v), err
}

// SetDataCursor overrides the data cursor.
func (t *Trainer) SetDataCursor(cursor uint64) error {
	return t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_set_data_cursor(p, C.uint64_t(cursor), msg)
	})
}

// Report returns what happened at creation (the checkpoint resumed from, damaged ones skipped).
func (t *Trainer) Report() (string, error) {
	var text *C.char
	err := t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus { return C.dsgo_trainer_report(p, &text, msg) })
	if err != nil {
		return "", err
	}
	defer C.free(unsafe.Pointer(text))
	return C.GoString(text), nil
}

// Param returns a snapshot of the trainable parameter name.
func (t *Trainer) Param(name string) (*Tensor, error) {
	n, err := cString(name)
	if err != nil {
		return nil, err
	}
	var out *C.DsTensor
	err = t.with(func(p *C.DsTrainer, msg **C.char) C.DsStatus {
		return C.dsgo_trainer_param(p, (*C.char)(unsafe.Pointer(&n[0])), &out, msg)
	})
	runtime.KeepAlive(n)
	if err != nil {
		return nil, err
	}
	return wrapTensor(out), nil
}

// Close frees the trainer after any call in flight on it returns. Graphs it exported and
// tensors it returned stay valid. Idempotent; always nil.
func (t *Trainer) Close() error {
	t.handle().close()
	return nil
}

package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// CTR sample layout of the synthetic generator.
const (
	// CtrNumDense is the number of dense features per sample.
	CtrNumDense = C.DS_CTR_NUM_DENSE
	// CtrNumFields is the number of categorical fields per sample.
	CtrNumFields = C.DS_CTR_NUM_FIELDS
)

// CtrConfig sets a CTR generator up; start from DefaultCtrConfig.
type CtrConfig struct {
	// VocabSizes is the number of ids of each field (each >= 1).
	VocabSizes [CtrNumFields]int64
	// ZipfExponent is the exponent of the ids' power-law popularity (finite, > 0).
	ZipfExponent float64
}

// DefaultCtrConfig returns the engine's defaults (26 fields × 100,000 ids, exponent 1.1).
func DefaultCtrConfig() (CtrConfig, error) {
	var c CtrConfig
	if err := ready(); err != nil {
		return c, err
	}
	var zipf C.double
	var msg *C.char
	s := C.dsgo_ctr_config_default((*C.int64_t)(unsafe.Pointer(&c.VocabSizes[0])), &zipf, &msg)
	c.ZipfExponent = float64(zipf)
	return c, statusError(s, msg)
}

// CtrGenerator is a seeded, seekable stream of Criteo-shaped click samples. Concurrent
// calls take turns inside the engine.
type CtrGenerator struct{ h *handle }

func freeCtrGenerator(p unsafe.Pointer) { C.ds_ctr_generator_free((*C.DsCtrGenerator)(p)) }

// NewCtrGenerator creates a generator at cursor 0 from cfg (nil = the defaults) and seed.
func NewCtrGenerator(cfg *CtrConfig, seed uint64) (*CtrGenerator, error) {
	if cfg == nil {
		d, err := DefaultCtrConfig()
		if err != nil {
			return nil, err
		}
		cfg = &d
	}
	if err := ready(); err != nil {
		return nil, err
	}
	var out *C.DsCtrGenerator
	var msg *C.char
	s := C.dsgo_ctr_generator_new((*C.int64_t)(unsafe.Pointer(&cfg.VocabSizes[0])), C.double(cfg.ZipfExponent),
		C.uint64_t(seed), &out, &msg)
	runtime.KeepAlive(cfg)
	if err := statusError(s, msg); err != nil {
		return nil, err
	}
	g := &CtrGenerator{h: newHandle("CtrGenerator", unsafe.Pointer(out), freeCtrGenerator)}
	attachSafetyNet(g, g.h)
	return g, nil
}

func (g *CtrGenerator) handle() *handle {
	if g == nil {
		return nil
	}
	return g.h
}

// CtrBatch is n samples: Dense f32 [n, 13], IDs i64 [n, 26], Labels f32 [n] of 0 and 1,
// and Probs f32 [n] (the true click probabilities) when asked for, else nil.
type CtrBatch struct {
	Dense, IDs, Labels, Probs *Tensor
}

// Close closes the batch's tensors. Always nil.
func (b *CtrBatch) Close() error {
	for _, t := range []*Tensor{b.Dense, b.IDs, b.Labels, b.Probs} {
		if t != nil {
			t.Close()
		}
	}
	return nil
}

// Next draws the next n samples and advances the cursor by n.
func (g *CtrGenerator) Next(n int64, withProbs bool) (*CtrBatch, error) {
	p, err := g.handle().acquire("CtrGenerator")
	if err != nil {
		return nil, err
	}
	defer g.h.release()
	var dense, ids, labels, probs *C.DsTensor
	var pp **C.DsTensor
	if withProbs {
		pp = &probs
	}
	var msg *C.char
	s := C.dsgo_ctr_generator_next((*C.DsCtrGenerator)(p), C.int64_t(n), &dense, &ids, &labels, pp, &msg)
	runtime.KeepAlive(g)
	if err := statusError(s, msg); err != nil {
		return nil, err
	}
	b := &CtrBatch{Dense: wrapTensor(dense), IDs: wrapTensor(ids), Labels: wrapTensor(labels)}
	if withProbs {
		b.Probs = wrapTensor(probs)
	}
	return b, nil
}

// Cursor returns the index of the next sample.
func (g *CtrGenerator) Cursor() (uint64, error) {
	p, err := g.handle().acquire("CtrGenerator")
	if err != nil {
		return 0, err
	}
	defer g.h.release()
	var v C.uint64_t
	var msg *C.char
	s := C.dsgo_ctr_generator_cursor((*C.DsCtrGenerator)(p), &v, &msg)
	runtime.KeepAlive(g)
	return uint64(v), statusError(s, msg)
}

// Seek positions the stream so that the next sample drawn is sample cursor.
func (g *CtrGenerator) Seek(cursor uint64) error {
	p, err := g.handle().acquire("CtrGenerator")
	if err != nil {
		return err
	}
	defer g.h.release()
	var msg *C.char
	s := C.dsgo_ctr_generator_seek((*C.DsCtrGenerator)(p), C.uint64_t(cursor), &msg)
	runtime.KeepAlive(g)
	return statusError(s, msg)
}

// Close frees the generator (tensors it produced are unaffected). Idempotent; always nil.
func (g *CtrGenerator) Close() error {
	g.handle().close()
	return nil
}

// metric runs a two-tensor metric shim.
func metric(a, b *Tensor, call func(x, y *C.DsTensor, out *C.double, msg **C.char) C.DsStatus) (float64, error) {
	ps, done, err := acquireTensors([]*Tensor{a, b})
	if err != nil {
		return 0, err
	}
	defer done()
	var v C.double
	var msg *C.char
	s := call(ps[0], ps[1], &v, &msg)
	return float64(v), statusError(s, msg)
}

// AUC returns the exact ROC AUC of scores against 0/1 labels.
func AUC(scores, labels *Tensor) (float64, error) {
	return metric(scores, labels, func(x, y *C.DsTensor, out *C.double, msg **C.char) C.DsStatus {
		return C.dsgo_metric_auc(x, y, out, msg)
	})
}

// LogLoss returns the mean binary cross-entropy of probabilities against 0/1 labels.
func LogLoss(probs, labels *Tensor) (float64, error) {
	return metric(probs, labels, func(x, y *C.DsTensor, out *C.double, msg **C.char) C.DsStatus {
		return C.dsgo_metric_log_loss(x, y, out, msg)
	})
}

// Accuracy returns the binary or multiclass accuracy (see ds_metric_accuracy).
func Accuracy(scores, labels *Tensor) (float64, error) {
	return metric(scores, labels, func(x, y *C.DsTensor, out *C.double, msg **C.char) C.DsStatus {
		return C.dsgo_metric_accuracy(x, y, out, msg)
	})
}

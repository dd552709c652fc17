package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Graph is a finished, immutable computation graph. Executors and trainers made from it
// keep what they need, so it may be closed right after.
type Graph struct{ h *handle }

func freeGraph(p unsafe.Pointer) { C.ds_graph_free((*C.DsGraph)(p)) }

func wrapGraph(p *C.DsGraph) *Graph {
	g := &Graph{h: newHandle("Graph", unsafe.Pointer(p), freeGraph)}
	attachSafetyNet(g, g.h)
	return g
}

func (g *Graph) handle() *handle {
	if g == nil {
		return nil
	}
	return g.h
}

// BuildModel builds the ready-made model name ("dcn_v2", "deepfm", "logistic_regression",
// "mlp_classifier") with attrs (nil = the defaults); see ds_model_build for the attributes,
// inputs and outputs.
func BuildModel(name string, attrs *Attrs) (*Graph, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	n, err := cString(name)
	if err != nil {
		return nil, err
	}
	a, done, err := acquireAttrs(attrs)
	if err != nil {
		return nil, err
	}
	defer done()
	var out *C.DsGraph
	var msg *C.char
	s := C.dsgo_model_build((*C.char)(unsafe.Pointer(&n[0])), a, &out, &msg)
	runtime.KeepAlive(n)
	if err := statusError(s, msg); err != nil {
		return nil, err
	}
	return wrapGraph(out), nil
}

// LoadGraph loads a graph saved by Graph.Save (ErrNotFound for a missing file,
// ErrCorruptData for a damaged one).
func LoadGraph(path string) (*Graph, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	p, err := cString(path)
	if err != nil {
		return nil, err
	}
	var out *C.DsGraph
	var msg *C.char
	s := C.dsgo_graph_load((*C.char)(unsafe.Pointer(&p[0])), &out, &msg)
	runtime.KeepAlive(p)
	if err := statusError(s, msg); err != nil {
		return nil, err
	}
	return wrapGraph(out), nil
}

// Save writes the graph to path atomically (a temporary file renamed into place).
func (g *Graph) Save(path string) error {
	p, err := g.handle().acquire("Graph")
	if err != nil {
		return err
	}
	defer g.h.release()
	cp, err := cString(path)
	if err != nil {
		return err
	}
	var msg *C.char
	s := C.dsgo_graph_save((*C.DsGraph)(p), (*C.char)(unsafe.Pointer(&cp[0])), &msg)
	runtime.KeepAlive(cp)
	runtime.KeepAlive(g)
	return statusError(s, msg)
}

// NumOps returns the number of op nodes.
func (g *Graph) NumOps() (int, error) {
	p, err := g.handle().acquire("Graph")
	if err != nil {
		return 0, err
	}
	defer g.h.release()
	var n C.size_t
	var msg *C.char
	s := C.dsgo_graph_num_ops((*C.DsGraph)(p), &n, &msg)
	runtime.KeepAlive(g)
	return int(n), statusError(s, msg)
}

// Dump returns a readable listing of the graph's nodes and outputs.
func (g *Graph) Dump() (string, error) {
	p, err := g.handle().acquire("Graph")
	if err != nil {
		return "", err
	}
	defer g.h.release()
	var text, msg *C.char
	s := C.dsgo_graph_dump((*C.DsGraph)(p), &text, &msg)
	runtime.KeepAlive(g)
	if err := statusError(s, msg); err != nil {
		return "", err
	}
	defer C.free(unsafe.Pointer(text))
	return C.GoString(text), nil
}

// Close frees the graph after any call in flight on it returns. Idempotent; always nil.
func (g *Graph) Close() error {
	g.handle().close()
	return nil
}

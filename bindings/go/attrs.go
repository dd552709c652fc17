package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Attrs is a typed attribute set (name → int, float, bool, ints or string) for models,
// optimizers and schedules. Fill it from one goroutine; it may then be read by many calls.
type Attrs struct{ h *handle }

func freeAttrs(p unsafe.Pointer) { C.ds_attrs_free((*C.DsAttrs)(p)) }

// NewAttrs creates an empty attribute set.
func NewAttrs() (*Attrs, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	var out *C.DsAttrs
	var msg *C.char
	if err := statusError(C.dsgo_attrs_create(&out, &msg), msg); err != nil {
		return nil, err
	}
	a := &Attrs{h: newHandle("Attrs", unsafe.Pointer(out), freeAttrs)}
	attachSafetyNet(a, a.h)
	return a, nil
}

func (a *Attrs) handle() *handle {
	if a == nil {
		return nil
	}
	return a.h
}

// set runs one setter with the C handle and the NUL-terminated name.
func (a *Attrs) set(name string, call func(p *C.DsAttrs, n *C.char, msg **C.char) C.DsStatus) error {
	p, err := a.handle().acquire("Attrs")
	if err != nil {
		return err
	}
	defer a.h.release()
	n, err := cString(name)
	if err != nil {
		return err
	}
	var msg *C.char
	s := call((*C.DsAttrs)(p), (*C.char)(unsafe.Pointer(&n[0])), &msg)
	runtime.KeepAlive(n)
	runtime.KeepAlive(a)
	return statusError(s, msg)
}

// SetInt sets (or replaces) an integer attribute.
func (a *Attrs) SetInt(name string, v int64) error {
	return a.set(name, func(p *C.DsAttrs, n *C.char, msg **C.char) C.DsStatus {
		return C.dsgo_attrs_set_int(p, n, C.int64_t(v), msg)
	})
}

// SetFloat sets (or replaces) a float attribute.
func (a *Attrs) SetFloat(name string, v float64) error {
	return a.set(name, func(p *C.DsAttrs, n *C.char, msg **C.char) C.DsStatus {
		return C.dsgo_attrs_set_float(p, n, C.double(v), msg)
	})
}

// SetBool sets (or replaces) a bool attribute.
func (a *Attrs) SetBool(name string, v bool) error {
	return a.set(name, func(p *C.DsAttrs, n *C.char, msg **C.char) C.DsStatus {
		return C.dsgo_attrs_set_bool(p, n, C.bool(v), msg)
	})
}

// SetInts sets (or replaces) an integer-list attribute (copied).
func (a *Attrs) SetInts(name string, v []int64) error {
	return a.set(name, func(p *C.DsAttrs, n *C.char, msg **C.char) C.DsStatus {
		var ptr *C.int64_t
		if len(v) > 0 {
			ptr = (*C.int64_t)(unsafe.Pointer(&v[0]))
		}
		s := C.dsgo_attrs_set_ints(p, n, ptr, C.size_t(len(v)), msg)
		runtime.KeepAlive(v)
		return s
	})
}

// SetString sets (or replaces) a string attribute (copied).
func (a *Attrs) SetString(name, v string) error {
	cv, err := cString(v)
	if err != nil {
		return err
	}
	return a.set(name, func(p *C.DsAttrs, n *C.char, msg **C.char) C.DsStatus {
		s := C.dsgo_attrs_set_string(p, n, (*C.char)(unsafe.Pointer(&cv[0])), msg)
		runtime.KeepAlive(cv)
		return s
	})
}

// Close frees the attribute set after any call in flight on it returns. Idempotent; always nil.
func (a *Attrs) Close() error {
	a.handle().close()
	return nil
}

// acquireAttrs is acquire for an optional *Attrs: nil means "no attributes" (C NULL).
func acquireAttrs(a *Attrs) (*C.DsAttrs, func(), error) {
	if a == nil {
		return nil, func() {}, nil
	}
	p, err := a.h.acquire("Attrs")
	if err != nil {
		return nil, nil, err
	}
	return (*C.DsAttrs)(p), func() { a.h.release(); runtime.KeepAlive(a) }, nil
}

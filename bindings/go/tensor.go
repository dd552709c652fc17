package deepseek

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Dtype is a DS_DTYPE_* element type code.
type Dtype int32

// String returns the C name of the dtype, e.g. "DS_DTYPE_F32".
func (d Dtype) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return "DS_DTYPE_?"
}

// Element is a Go element type with a matching engine dtype: float32 (F32), float64 (F64),
// int32 (I32), int64 (I64), uint8 (U8) and bool (BOOL, one byte, 0 or 1, as Go stores it).
type Element interface {
	float32 | float64 | int32 | int64 | uint8 | bool
}

// dtypeOf returns the engine dtype of T.
func dtypeOf[T Element]() Dtype {
	var zero T
	switch any(zero).(type) {
	case float32:
		return F32
	case float64:
		return F64
	case int32:
		return I32
	case int64:
		return I64
	case uint8:
		return U8
	default:
		return Bool
	}
}

// Tensor is an engine tensor on the CPU or a device. Close it when done.
type Tensor struct{ h *handle }

func freeTensor(p unsafe.Pointer) { C.ds_tensor_free((*C.DsTensor)(p)) }

// wrapTensor takes ownership of a new C tensor handle.
func wrapTensor(p *C.DsTensor) *Tensor {
	t := &Tensor{h: newHandle("Tensor", unsafe.Pointer(p), freeTensor)}
	attachSafetyNet(t, t.h)
	return t
}

// wrapTensors takes ownership of handles a call returned, in order.
func wrapTensors(ps []*C.DsTensor) []*Tensor {
	ts := make([]*Tensor, len(ps))
	for i, p := range ps {
		ts[i] = wrapTensor(p)
	}
	return ts
}

// NewTensor creates a CPU tensor of T's dtype with the given shape holding a copy of data
// (row-major; len(data) must equal the product of the shape, which the engine checks; no
// shape makes a 1-D tensor of len(data)). The engine copies data during the call.
func NewTensor[T Element](data []T, shape ...int64) (*Tensor, error) {
	if err := ready(); err != nil {
		return nil, err
	}
	if shape == nil {
		shape = []int64{int64(len(data))}
	}
	var dims *C.int64_t
	if len(shape) > 0 {
		dims = (*C.int64_t)(unsafe.Pointer(&shape[0]))
	}
	var ptr unsafe.Pointer
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	}
	var zero T
	nbytes := uintptr(len(data)) * unsafe.Sizeof(zero)
	var out *C.DsTensor
	var msg *C.char
	s := C.dsgo_tensor_from_data(C.DsDtype(dtypeOf[T]()), dims, C.size_t(len(shape)), ptr, C.size_t(nbytes), &out, &msg)
	runtime.KeepAlive(data)
	runtime.KeepAlive(shape)
	if err := statusError(s, msg); err != nil {
		return nil, err
	}
	return wrapTensor(out), nil
}

// info returns the dtype, element count and dimensions in one C call.
func (t *Tensor) info() (Dtype, int64, []int64, error) {
	p, err := t.handle().acquire("Tensor")
	if err != nil {
		return 0, 0, nil, err
	}
	defer t.h.release()
	var dtype C.DsDtype
	var numel C.int64_t
	var ndim C.size_t
	var dims [8]int64
	var msg *C.char
	s := C.dsgo_tensor_info((*C.DsTensor)(p), &dtype, &numel, &ndim, (*C.int64_t)(unsafe.Pointer(&dims[0])), 8, &msg)
	if err := statusError(s, msg); err != nil {
		return 0, 0, nil, err
	}
	shape := make([]int64, int(ndim))
	if int(ndim) <= len(dims) {
		copy(shape, dims[:])
	} else if len(shape) > 0 {
		s = C.dsgo_tensor_info((*C.DsTensor)(p), &dtype, &numel, &ndim, (*C.int64_t)(unsafe.Pointer(&shape[0])), ndim, &msg)
		if err := statusError(s, msg); err != nil {
			return 0, 0, nil, err
		}
	}
	runtime.KeepAlive(t)
	return Dtype(dtype), int64(numel), shape, nil
}

func (t *Tensor) handle() *handle {
	if t == nil {
		return nil
	}
	return t.h
}

// Dtype returns the element type.
func (t *Tensor) Dtype() (Dtype, error) {
	d, _, _, err := t.info()
	return d, err
}

// Shape returns the dimensions (empty for a scalar).
func (t *Tensor) Shape() ([]int64, error) {
	_, _, s, err := t.info()
	return s, err
}

// Numel returns the element count.
func (t *Tensor) Numel() (int64, error) {
	_, n, _, err := t.info()
	return n, err
}

// CopyOut copies the elements of t, row-major, into dst in one bulk copy. T must be the
// tensor's element type (else ErrDtypeMismatch) and dst must hold at least Numel elements
// (else the engine's ErrBufferTooSmall).
func CopyOut[T Element](t *Tensor, dst []T) error {
	p, err := t.handle().acquire("Tensor")
	if err != nil {
		return err
	}
	defer t.h.release()
	var ptr unsafe.Pointer
	if len(dst) > 0 {
		ptr = unsafe.Pointer(&dst[0])
	}
	var zero T
	var msg *C.char
	s := C.dsgo_tensor_copy_out((*C.DsTensor)(p), C.DsDtype(dtypeOf[T]()), ptr,
		C.size_t(uintptr(len(dst))*unsafe.Sizeof(zero)), &msg)
	runtime.KeepAlive(dst)
	runtime.KeepAlive(t)
	return statusError(s, msg)
}

// Values returns a new slice holding the elements of t (T must be its element type).
func Values[T Element](t *Tensor) ([]T, error) {
	n, err := t.Numel()
	if err != nil {
		return nil, err
	}
	dst := make([]T, n)
	if err := CopyOut(t, dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// Close frees the tensor after any call in flight on it returns. Idempotent; always nil
// (the error result only satisfies io.Closer).
func (t *Tensor) Close() error {
	t.handle().close()
	return nil
}

// acquireTensors registers a call in flight on each tensor and returns their C handles;
// release undoes it. A closed tensor fails the whole call before C sees anything.
func acquireTensors(ts []*Tensor) ([]*C.DsTensor, func(), error) {
	ps, err := acquireEach(make([]*C.DsTensor, 0, len(ts)), len(ts), func(i int) *Tensor { return ts[i] })
	if err != nil {
		return nil, nil, err
	}
	return ps, func() {
		for _, t := range ts {
			t.h.release()
		}
		runtime.KeepAlive(ts)
	}, nil
}

// acquireEach registers a call in flight on tensor(0), ..., tensor(n-1) and appends their C
// handles to ps. On a closed tensor it releases the ones before it and fails.
func acquireEach(ps []*C.DsTensor, n int, tensor func(int) *Tensor) ([]*C.DsTensor, error) {
	for i := 0; i < n; i++ {
		p, err := tensor(i).handle().acquire("Tensor")
		if err != nil {
			for j := 0; j < i; j++ {
				tensor(j).h.release()
			}
			return ps, err
		}
		ps = append(ps, (*C.DsTensor)(p))
	}
	return ps, nil
}

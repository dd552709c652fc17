package deepseek

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// closedBit marks a handle as closing in its state word; the low bits count calls in flight.
const closedBit = int64(1) << 62

// handle owns one C handle and counts the calls using it, so that Close can wait for them:
// freeing a handle while another thread is inside a call on it is undefined in C.
// Acquire/release is two atomic adds (no lock), which keeps 1,000 goroutines sharing one
// Executor from queueing on a mutex.
type handle struct {
	state atomic.Int64         // calls in flight, plus closedBit once Close has begun
	ptr   unsafe.Pointer       // the C handle; never changes, freed once
	free  func(unsafe.Pointer) // the C ds_<thing>_free
	kind  string               // "Tensor", "Executor", ... for messages
	once  sync.Once            // makes Close idempotent and lets a second Close wait for the first
	net   safetyNet            // the garbage-collector safety net, cancelled by close
}

func newHandle(kind string, ptr unsafe.Pointer, free func(unsafe.Pointer)) *handle {
	return &handle{ptr: ptr, free: free, kind: kind}
}

// acquire registers a call in flight and returns the C pointer, or the closed error when
// Close has begun (or h is nil: a nil or zero-value object). Every success pairs with release.
func (h *handle) acquire(kind string) (unsafe.Pointer, error) {
	if h == nil {
		return nil, closedError(kind)
	}
	if h.state.Add(1)&closedBit != 0 {
		h.state.Add(-1)
		return nil, closedError(h.kind)
	}
	return h.ptr, nil
}

// release ends a call registered by acquire.
func (h *handle) release() { h.state.Add(-1) }

// close marks the handle closed, waits until no call is in flight, then frees it, once.
// It reports whether this call freed it. The wait polls with a growing sleep: closing
// while calls run is rare and short, and polling keeps each handle free of a channel
// (one more allocation for every tensor a run returns).
func (h *handle) close() bool {
	if h == nil {
		return false
	}
	freed := false
	h.once.Do(func() {
		pause := time.Microsecond
		h.state.Add(closedBit) // from here on acquire fails
		for h.state.Load() != closedBit {
			runtime.Gosched()
			time.Sleep(pause)
			if pause < time.Millisecond {
				pause *= 2
			}
		}
		h.free(h.ptr)
		h.net.stop()
		freed = true
	})
	return freed
}

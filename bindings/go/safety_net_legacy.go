//go:build !go1.24

package deepseek

import "runtime"

// attachSafetyNet frees h when owner becomes unreachable without Close (Go before 1.24,
// which lacks runtime.AddCleanup). Registered only after the C object was created.
func attachSafetyNet[T any](owner *T, h *handle) {
	runtime.SetFinalizer(owner, func(*T) { reclaim(h) })
}

// safetyNet is empty before Go 1.24: a finalizer is not cancelled by Close (the handle does
// not know its owner), and it finds the handle already closed.
type safetyNet struct{}

func (safetyNet) stop() {}

// whenCollected runs fn(arg) after owner becomes unreachable (a finalizer before Go 1.24).
func whenCollected[T, A any](owner *T, fn func(A), arg A) {
	runtime.SetFinalizer(owner, func(*T) { fn(arg) })
}

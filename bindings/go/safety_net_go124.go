//go:build go1.24

package deepseek

import "runtime"

// attachSafetyNet frees h when owner becomes unreachable without Close. Registered only
// after the C object was created, so a failed constructor never frees a half-built handle.
// runtime.AddCleanup (not SetFinalizer) because it cannot resurrect owner and h holds no
// reference back to owner.
func attachSafetyNet[T any](owner *T, h *handle) {
	h.net = safetyNet{runtime.AddCleanup(owner, reclaim, h)}
}

// safetyNet is the cleanup registered for a handle. Close cancels it: the runtime keeps
// cleanups in a per-span list that each registration walks, so records of closed objects
// left for the collector would make every later registration slower.
type safetyNet struct{ cleanup runtime.Cleanup }

// stop cancels the cleanup; a no-op when none was registered or it is already running.
func (n safetyNet) stop() { n.cleanup.Stop() }

// whenCollected runs fn(arg) after owner becomes unreachable; arg must not reach owner.
func whenCollected[T, A any](owner *T, fn func(A), arg A) { runtime.AddCleanup(owner, fn, arg) }

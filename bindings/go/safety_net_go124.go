//go:build go1.24

package deepseek

import "runtime"

// attachSafetyNet frees h when owner becomes unreachable without Close. Registered only
// after the C object was created, so a failed constructor never frees a half-built handle.
// runtime.AddCleanup (not SetFinalizer) because it cannot resurrect owner and h holds no
// reference back to owner.
func attachSafetyNet[T any](owner *T, h *handle) {
	runtime.AddCleanup(owner, reclaim, h)
}

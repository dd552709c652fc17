package deepseek

import "sync/atomic"

// leaked counts objects the garbage collector found unreachable before their Close.
var leaked atomic.Uint64

// LeakedHandles returns how many objects were freed by the garbage-collector safety net
// instead of Close since the process started. Each is a missing Close in the program.
func LeakedHandles() uint64 { return leaked.Load() }

// reclaim is the safety net's action: free the handle if Close never ran, and count it.
func reclaim(h *handle) {
	if h.close() {
		leaked.Add(1)
	}
}

package deepseek

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain runs the suite, then checks that every engine handle was freed: the tests close
// what they open, and the objects the leak test drops are reclaimed by the safety net.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// Objects dropped on purpose wait for the collector; give their cleanups a moment.
		deadline := time.Now().Add(10 * time.Second)
		for LiveObjects() != 0 && time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		if n := LiveObjects(); n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: ds_live_objects() = %d after the suite, want 0\n", n)
			code = 1
		}
	}
	os.Exit(code)
}

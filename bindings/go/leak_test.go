package deepseek

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestLeakSafetyNet: with GOGC=1 semantics (SetGCPercent(1)) and forced collections,
// 100,000 batch-1 predicts stay correct; one output in ten is dropped without Close, and
// the safety net frees exactly those and counts them; the live-handle count returns to
// where it started.
func TestLeakSafetyNet(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	in := loadScenarioInputs(t)
	defer in.Close()
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	defer ex.Close()
	rows := scenarioRows(t)
	defer closeRows(rows)
	want := make([]float32, scBatch)
	for r := range rows {
		want[r], err = predict1(ex, rows[r])
		check(t, err)
	}
	runtime.GC()
	base, leakedBefore := LiveObjects(), LeakedHandles()

	const calls, dropEvery = 100_000, 10
	dropped := uint64(0)
	feeds := make([][]Feed, scBatch)
	for r := range rows {
		feeds[r] = []Feed{{"dense", rows[r][0]}, {"ids", rows[r][1]}}
	}
	var p [1]float32
	for i := 0; i < calls; i++ {
		r := i % scBatch
		out, err := ex.Run(bg, feeds[r], probFetch)
		check(t, err)
		check(t, CopyOut(out[0], p[:]))
		if p[0] != want[r] {
			t.Fatalf("call %d: %v, want %v", i, p[0], want[r])
		}
		if i%dropEvery == 0 {
			dropped++ // dropped without Close: the safety net's job
		} else {
			out[0].Close()
		}
		if i%10_000 == 0 {
			runtime.GC()
		}
	}

	deadline := time.Now().Add(20 * time.Second)
	for (LiveObjects() != base || LeakedHandles()-leakedBefore < dropped) && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if got := LeakedHandles() - leakedBefore; got != dropped {
		t.Fatalf("safety net reclaimed %d handles, %d were dropped", got, dropped)
	}
	if LiveObjects() != base {
		t.Fatalf("live objects %d, want %d", LiveObjects(), base)
	}
}

package deepseek

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRunContextCancelled: a run whose context is already cancelled stops with the engine's
// CANCELLED status, matching both ErrCancelled and context.Canceled; the executor then
// runs normally.
func TestRunContextCancelled(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	defer ex.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := ex.Run(ctx, []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"prob"})
	if out != nil || !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v %v", out, err)
	}
	out, err = ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"prob"})
	check(t, err)
	out[0].Close()
}

// TestRunDeadlineMidRun: a deadline that expires during a long run stops it (the AfterFunc
// goroutine cancels the engine's token) with ErrCancelled and context.DeadlineExceeded,
// well before the run would have finished.
func TestRunDeadlineMidRun(t *testing.T) {
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	defer ex.Close()
	const rows = 200_000
	dense := must(t)(NewTensor(make([]float32, rows*scDense), rows, scDense))
	defer dense.Close()
	ids := must(t)(NewTensor(make([]int64, rows*scFields), rows, scFields))
	defer ids.Close()
	feeds := []Feed{{"dense", dense}, {"ids", ids}}

	full := time.Duration(1 << 62)
	for i := 0; i < 2; i++ { // the fastest of two, past the first run's warm-up
		start := time.Now()
		out, err := ex.Run(context.Background(), feeds, []string{"prob"})
		check(t, err)
		out[0].Close()
		full = min(full, time.Since(start))
	}

	ctx, cancel := context.WithTimeout(context.Background(), full/10)
	defer cancel()
	start := time.Now()
	out, err := ex.Run(ctx, feeds, []string{"prob"})
	took := time.Since(start)
	if out != nil || !errors.Is(err, ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run with a %v deadline (a full run takes %v): %v after %v", full/10, full, err, time.Since(start))
	}
	if took > full*3/4 {
		t.Fatalf("cancelled run took %v, a full run %v", took, full)
	}
}

// TestCancelToken: a shared token cancels the runs given it until Reset.
func TestCancelToken(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	defer ex.Close()
	tok, err := NewCancelToken()
	check(t, err)
	defer tok.Close()
	check(t, tok.Cancel())
	if c, err := tok.IsCancelled(); err != nil || !c {
		t.Fatalf("IsCancelled = %v, %v", c, err)
	}
	feeds := []Feed{{"dense", in.dense}, {"ids", in.ids}}
	_, err = ex.RunWith(context.Background(), feeds, []string{"prob"}, &RunOptions{Cancel: tok})
	if !errors.Is(err, ErrCancelled) || errors.Is(err, context.Canceled) {
		t.Fatalf("run with a cancelled token: %v", err)
	}
	check(t, tok.Reset())
	var stats RunStats
	out, err := ex.RunWith(context.Background(), feeds, []string{"prob"}, &RunOptions{Cancel: tok, Stats: &stats})
	check(t, err)
	out[0].Close()
	if stats.NodesRun <= 0 || stats.PeakBytes <= 0 {
		t.Fatalf("stats not filled: %+v", stats)
	}
}

package deepseek

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closedErr fails unless err is the use-after-Close error (ErrClosed and ErrInvalidHandle).
func closedErr(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrInvalidHandle) {
		t.Fatalf("%s after Close: %v, want ErrClosed", what, err)
	}
}

// TestUseAfterClose: every kind of object, closed twice (a no-op the second time), then
// used: each method returns ErrClosed and nothing crashes. Nil objects behave the same.
func TestUseAfterClose(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	base := LiveObjects()

	x := must(t)(NewTensor([]float32{1, 2}))
	attrs, err := NewAttrs()
	check(t, err)
	g := buildScenarioModel(t)
	xo, err := NewExecOptions()
	check(t, err)
	ex, err := NewExecutor(g, xo)
	check(t, err)
	tok, err := NewCancelToken()
	check(t, err)
	to, err := NewTrainerOptions()
	check(t, err)
	tr, err := NewTrainer(g, "loss", to)
	check(t, err)
	gen, err := NewCtrGenerator(nil, 1)
	check(t, err)
	if LiveObjects() != base+9 {
		t.Fatalf("live objects %d, want %d", LiveObjects(), base+9)
	}
	for _, c := range []interface{ Close() error }{x, attrs, g, xo, ex, tok, to, tr, gen} {
		check(t, c.Close())
		check(t, c.Close()) // double Close: a no-op
	}
	if LiveObjects() != base {
		t.Fatalf("live objects %d after Close, want %d", LiveObjects(), base)
	}

	_, err = x.Shape()
	closedErr(t, "Tensor.Shape", err)
	closedErr(t, "CopyOut", CopyOut(x, make([]float32, 2)))
	closedErr(t, "Attrs.SetInt", attrs.SetInt("a", 1))
	_, err = BuildModel("dcn_v2", attrs)
	closedErr(t, "BuildModel with closed Attrs", err)
	closedErr(t, "Graph.Save", g.Save(t.TempDir()+"/g.dsg"))
	_, err = NewExecutor(g, nil)
	closedErr(t, "NewExecutor on a closed Graph", err)
	closedErr(t, "ExecOptions.SetOptLevel", xo.SetOptLevel(1))
	_, err = ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"prob"})
	closedErr(t, "Executor.Run", err)
	closedErr(t, "CancelToken.Cancel", tok.Cancel())
	closedErr(t, "TrainerOptions.SetLR", to.SetLR(1))
	_, err = tr.Step([]Feed{{"dense", in.dense}})
	closedErr(t, "Trainer.Step", err)
	_, err = tr.Export("prob")
	closedErr(t, "Trainer.Export", err)
	_, err = gen.Next(4, false)
	closedErr(t, "CtrGenerator.Next", err)
	_, err = AUC(x, x)
	closedErr(t, "AUC", err)

	// A closed feed fails the run before C sees it; a nil object is "closed" too.
	open := buildScenarioModel(t)
	defer open.Close()
	ex2, err := NewExecutor(open, nil)
	check(t, err)
	defer ex2.Close()
	_, err = ex2.Run(context.Background(), []Feed{{"dense", x}, {"ids", in.ids}}, []string{"prob"})
	closedErr(t, "Run with a closed feed", err)
	var nilEx *Executor
	_, err = nilEx.Run(context.Background(), nil, []string{"prob"})
	closedErr(t, "nil Executor", err)
	check(t, nilEx.Close())
}

// TestCloseOrder: parents are reference counted in the engine, so an executor keeps
// working after its graph is closed, and a graph exported by a closed trainer stays valid.
func TestCloseOrder(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	served := exportScenario(t, in) // the trainer that exported it is already closed
	ex, err := NewExecutor(served, nil)
	check(t, err)
	defer ex.Close()
	served.Close()
	out, err := ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"prob"})
	check(t, err)
	defer out[0].Close()
	prob, err := Values[float32](out[0])
	check(t, err)
	sameBits32(t, "prob after closing the graph", prob, readScenario[float32](t, "expected_prob_trained.f32", scBatch))
}

// TestCloseWaitsForRuns: 8 goroutines are inside Run (registered on the executor, held at
// a gate just before C); Close must not return while they are there; once they go through,
// all 8 finish with the right bits, Close returns, and later runs get ErrClosed.
func TestCloseWaitsForRuns(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	want := readScenario[float32](t, "expected_prob_initial.f32", scBatch)

	const runners = 8
	var acquired sync.WaitGroup
	acquired.Add(runners)
	gate := make(chan struct{})
	var held atomic.Int32
	testHookRunAcquired = func() {
		if held.Add(1) <= runners {
			acquired.Done()
			<-gate
		}
	}
	defer func() { testHookRunAcquired = nil }()

	results := make(chan error, runners)
	for i := 0; i < runners; i++ {
		go func() {
			out, err := ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"prob"})
			if err == nil {
				var prob []float32
				prob, err = Values[float32](out[0])
				out[0].Close()
				if err == nil {
					for j := range prob {
						if prob[j] != want[j] {
							err = errors.New("a run inside Close returned wrong values")
						}
					}
				}
			}
			results <- err
		}()
	}
	acquired.Wait()
	closed := make(chan struct{})
	go func() {
		ex.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while 8 runs were in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	for i := 0; i < runners; i++ {
		check(t, <-results)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the runs finished")
	}
	_, err = ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"prob"})
	closedErr(t, "Run after the waiting Close", err)
	check(t, ex.Close())
}

// TestCloseRacesRuns: 8 goroutines run a large batch in a loop while Close comes at an
// arbitrary moment; every run either succeeds or gets ErrClosed, and nothing crashes.
func TestCloseRacesRuns(t *testing.T) {
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	const rows = 20000
	dense := must(t)(NewTensor(make([]float32, rows*scDense), rows, scDense))
	defer dense.Close()
	ids := must(t)(NewTensor(make([]int64, rows*scFields), rows, scFields))
	defer ids.Close()
	var wg sync.WaitGroup
	var started sync.WaitGroup
	var ok, closedRuns atomic.Int64
	started.Add(8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				out, err := ex.Run(context.Background(), []Feed{{"dense", dense}, {"ids", ids}}, []string{"prob"})
				if first {
					started.Done()
					first = false
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					closedRuns.Add(1)
					return
				}
				out[0].Close()
				ok.Add(1)
			}
		}()
	}
	started.Wait()
	ex.Close()
	wg.Wait()
	if ok.Load() == 0 || closedRuns.Load() != 8 {
		t.Fatalf("%d runs succeeded, %d goroutines saw ErrClosed", ok.Load(), closedRuns.Load())
	}
}

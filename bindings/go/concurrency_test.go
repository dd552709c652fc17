package deepseek

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
)

// scenarioRows returns the scenario's 8 samples as batch-1 feeds, one pair per row.
func scenarioRows(t testing.TB) [][2]*Tensor {
	t.Helper()
	dense := readScenario[float32](t, "dense.f32", scBatch*scDense)
	ids := readScenario[int64](t, "ids.i64", scBatch*scFields)
	rows := make([][2]*Tensor, scBatch)
	for r := range rows {
		rows[r][0] = must(t)(NewTensor(dense[r*scDense:(r+1)*scDense], 1, scDense))
		rows[r][1] = must(t)(NewTensor(ids[r*scFields:(r+1)*scFields], 1, scFields))
	}
	return rows
}

func closeRows(rows [][2]*Tensor) {
	for _, r := range rows {
		r[0].Close()
		r[1].Close()
	}
}

// predict1 runs one batch-1 request and returns its probability.
func predict1(ex *Executor, row [2]*Tensor) (float32, error) {
	out, err := ex.Run(context.Background(), []Feed{{"dense", row[0]}, {"ids", row[1]}}, []string{"prob"})
	if err != nil {
		return 0, err
	}
	defer out[0].Close()
	var p [1]float32
	err = CopyOut(out[0], p[:])
	return p[0], err
}

// TestThousandGoroutines: 1,000 goroutines share one Executor over the scenario's exported
// graph, each sending batch-1 requests for every row; every output equals the single-
// threaded run bit for bit (run with -race: no reports).
func TestThousandGoroutines(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	served := exportScenario(t, in)
	defer served.Close()
	ex, err := NewExecutor(served, nil)
	check(t, err)
	defer ex.Close()
	rows := scenarioRows(t)
	defer closeRows(rows)

	want := make([]float32, scBatch)
	for r := range rows {
		want[r], err = predict1(ex, rows[r])
		check(t, err)
	}

	const goroutines, perGoroutine = 1000, 16
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for w := 0; w < goroutines; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				r := (w + i) % scBatch
				p, err := predict1(ex, rows[r])
				if err == nil && math.Float32bits(p) != math.Float32bits(want[r]) {
					err = fmt.Errorf("row %d: %v, single-threaded %v", r, p, want[r])
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d: %w", w, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Shared by the hot loops, so that they measure calls rather than building arguments.
var (
	bg        = context.Background()
	probFetch = []string{"prob"}
)

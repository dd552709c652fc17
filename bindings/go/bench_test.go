package deepseek

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/libdeepseek/deepseek-go/internal/cloop"
)

// Benchmarks for the bindings issue: the per-call cost of a batch-1 predict on the
// scenario's exported graph (compare with the C figure on the same workload), and bulk copy
// throughput in and out for 1M floats (b.SetBytes: go test prints MB/s).
//
//	go test -run '^$' -bench . -benchtime 2s -count 5

// BenchmarkPredictBatch1 is one request: Run with two feeds and one fetch, copy the
// probability out, Close the output; the engine's default thread pool.
func BenchmarkPredictBatch1(b *testing.B) { benchPredict(b) }

// BenchmarkPredictBatch1Inline is BenchmarkPredictBatch1 with a one-thread pool (ops run on
// the calling thread), which leaves mostly the per-call cost that the binding adds to C's.
func BenchmarkPredictBatch1Inline(b *testing.B) {
	defer oneThreadPool(b)()
	benchPredict(b)
}

// oneThreadPool sets the engine's pool to one thread; the returned func restores it.
func oneThreadPool(b *testing.B) func() {
	n, err := NumThreads()
	check(b, err)
	check(b, SetNumThreads(1))
	return func() { check(b, SetNumThreads(n)) }
}

// predictSetup makes the benchmarks' executor (the scenario's exported graph) and batch-1
// feeds; the returned func frees them.
func predictSetup(b *testing.B) (*Executor, []Feed, func()) {
	in := loadScenarioInputs(b)
	served := exportScenario(b, in)
	ex, err := NewExecutor(served, nil)
	check(b, err)
	rows := scenarioRows(b)
	feeds := []Feed{{"dense", rows[0][0]}, {"ids", rows[0][1]}}
	return ex, feeds, func() {
		closeRows(rows)
		ex.Close()
		served.Close()
		in.Close()
	}
}

func benchPredict(b *testing.B) {
	ex, feeds, done := predictSetup(b)
	defer done()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		predictOnce(b, ex, feeds)
	}
}

// predictOnce is one request: run, copy the probability out, close the output.
func predictOnce(b *testing.B, ex *Executor, feeds []Feed) {
	var p [1]float32
	out, err := ex.Run(bg, feeds, probFetch)
	if err != nil {
		b.Fatal(err)
	}
	if err := CopyOut(out[0], p[:]); err != nil {
		b.Fatal(err)
	}
	out[0].Close()
}

// BenchmarkPredictBatch1VsC measures what the binding adds to C's per-call cost. Rounds of
// Go requests alternate with rounds of the same requests made by a C loop (internal/cloop)
// on the same executor and feeds, with a one-thread pool, so both sides see the same machine
// state; this host's speed drifts by tens of percent between separate runs. Reports medians
// over the rounds: go-ns/call, c-ns/call and go-c-ns/call (the per-round difference).
// Run with -benchtime 1x: each iteration is a full set of rounds.
func BenchmarkPredictBatch1VsC(b *testing.B) {
	const rounds, calls = 15, 4000
	defer oneThreadPool(b)()
	ex, feeds, done := predictSetup(b)
	defer done()
	goRound := func() float64 {
		t0 := time.Now()
		for c := 0; c < calls; c++ {
			predictOnce(b, ex, feeds)
		}
		return float64(time.Since(t0).Nanoseconds()) / calls
	}
	cRound := func() float64 {
		t0 := time.Now()
		check(b, cloop.Predict(ex.h.ptr, feeds[0].Tensor.h.ptr, feeds[1].Tensor.h.ptr, calls))
		return float64(time.Since(t0).Nanoseconds()) / calls
	}
	goRound() // warm-up
	cRound()
	var goNs, cNs, diff []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			var g, c float64
			if r%2 == 0 { // alternate the order so a drift within a round pair cancels
				g, c = goRound(), cRound()
			} else {
				c, g = cRound(), goRound()
			}
			goNs, cNs, diff = append(goNs, g), append(cNs, c), append(diff, g-c)
		}
	}
	runtime.KeepAlive(ex)
	runtime.KeepAlive(feeds)
	b.ReportMetric(median(goNs), "go-ns/call")
	b.ReportMetric(median(cNs), "c-ns/call")
	b.ReportMetric(median(diff), "go-c-ns/call")
}

// median of v (v is reordered).
func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

const copyN = 1 << 20

// BenchmarkCopyIn1M creates a tensor from 1M float32 (one bulk copy) and closes it.
func BenchmarkCopyIn1M(b *testing.B) {
	src := make([]float32, copyN)
	b.SetBytes(4 * copyN)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, err := NewTensor(src)
		if err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// BenchmarkCopyOut1M copies a 1M-float32 tensor into a reused Go slice.
func BenchmarkCopyOut1M(b *testing.B) {
	t := must(b)(NewTensor(make([]float32, copyN)))
	defer t.Close()
	dst := make([]float32, copyN)
	b.SetBytes(4 * copyN)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := CopyOut(t, dst); err != nil {
			b.Fatal(err)
		}
	}
}

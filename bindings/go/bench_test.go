package deepseek

import (
	"testing"
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
	n, err := NumThreads()
	check(b, err)
	check(b, SetNumThreads(1))
	defer SetNumThreads(n)
	benchPredict(b)
}

func benchPredict(b *testing.B) {
	in := loadScenarioInputs(b)
	defer in.Close()
	served := exportScenario(b, in)
	defer served.Close()
	ex, err := NewExecutor(served, nil)
	check(b, err)
	defer ex.Close()
	rows := scenarioRows(b)
	defer closeRows(rows)
	feeds := []Feed{{"dense", rows[0][0]}, {"ids", rows[0][1]}}
	var p [1]float32
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := ex.Run(bg, feeds, probFetch)
		if err != nil {
			b.Fatal(err)
		}
		if err := CopyOut(out[0], p[:]); err != nil {
			b.Fatal(err)
		}
		out[0].Close()
	}
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

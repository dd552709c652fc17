// ctr_example is the Go version of examples/c/ctr_demo.c, small: train a DCN-v2 on the
// engine's synthetic CTR stream, export it, save it, load it back, and serve batch-1
// requests from concurrent goroutines sharing one Executor; print AUC and latency.
//
// Usage: ctr_example [work_dir]   (default build/go/ctr-example)
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	deepseek "github.com/libdeepseek/deepseek-go"
)

const (
	vocab      = 1000 // ids per field: a small model that trains in seconds
	batch      = 256
	steps      = 300
	evalN      = 4096
	servers    = 8 // goroutines serving at once
	perServer  = 250
	streamSeed = 2026
	heldOutAt  = 1 << 40 // held-out samples start here in the stream
)

// fail stops with the engine's error.
func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctr_example:", err)
		os.Exit(1)
	}
}

func generator() *deepseek.CtrGenerator {
	cfg, err := deepseek.DefaultCtrConfig()
	fail(err)
	for f := range cfg.VocabSizes {
		cfg.VocabSizes[f] = vocab
	}
	gen, err := deepseek.NewCtrGenerator(&cfg, streamSeed)
	fail(err)
	return gen
}

func buildModel() *deepseek.Graph {
	a, err := deepseek.NewAttrs()
	fail(err)
	defer a.Close()
	vs := make([]int64, deepseek.CtrNumFields)
	for f := range vs {
		vs[f] = vocab
	}
	fail(a.SetInts("vocab_sizes", vs))
	fail(a.SetInt("embed_dim", 8))
	fail(a.SetInts("mlp", []int64{64, 32}))
	fail(a.SetInt("seed", 7))
	g, err := deepseek.BuildModel("dcn_v2", a)
	fail(err)
	return g
}

func train(eval *deepseek.CtrBatch) *deepseek.Trainer {
	g := buildModel()
	defer g.Close()
	o, err := deepseek.NewTrainerOptions()
	fail(err)
	defer o.Close()
	fail(o.SetOptimizer("adam", nil))
	fail(o.SetLR(2e-3))
	fail(o.SetSparseOptimizer("rowwise_adagrad", nil))
	fail(o.SetSparseLR(0.05))
	tr, err := deepseek.NewTrainer(g, "loss", o)
	fail(err)

	gen := generator()
	defer gen.Close()
	start := time.Now()
	for s := 1; s <= steps; s++ {
		b, err := gen.Next(batch, false)
		fail(err)
		loss, err := tr.Step([]deepseek.Feed{{Name: "dense", Tensor: b.Dense}, {Name: "ids", Tensor: b.IDs}, {Name: "label", Tensor: b.Labels}})
		b.Close()
		fail(err)
		if s%100 == 0 {
			fmt.Printf("  step %3d  loss %.4f  held-out AUC %.4f  %6.0f samples/s\n", s, loss, trainerAUC(tr, eval),
				float64(s*batch)/time.Since(start).Seconds())
		}
	}
	return tr
}

func trainerAUC(tr *deepseek.Trainer, eval *deepseek.CtrBatch) float64 {
	out, err := tr.Evaluate([]deepseek.Feed{{Name: "dense", Tensor: eval.Dense}, {Name: "ids", Tensor: eval.IDs}, {Name: "label", Tensor: eval.Labels}},
		[]string{"prob"})
	fail(err)
	defer out[0].Close()
	auc, err := deepseek.AUC(out[0], eval.Labels)
	fail(err)
	return auc
}

func main() {
	work := "build/go/ctr-example"
	if len(os.Args) > 1 {
		work = os.Args[1]
	}
	fail(os.MkdirAll(work, 0o755))
	fmt.Printf("libdeepseek %s from Go — DCN-v2 on the synthetic CTR stream (26 fields x %d ids)\n",
		deepseek.Version(), vocab)

	evalGen := generator()
	fail(evalGen.Seek(heldOutAt))
	eval, err := evalGen.Next(evalN, true)
	fail(err)
	evalGen.Close()
	defer eval.Close()
	oracle, err := deepseek.AUC(eval.Probs, eval.Labels)
	fail(err)

	t0 := time.Now()
	tr := train(eval)
	trainTime := time.Since(t0)
	trainedAUC := trainerAUC(tr, eval)

	// Export for serving, save, and load back as a service would.
	path := filepath.Join(work, "dcn_v2.dsg")
	served, err := tr.Export("prob")
	fail(err)
	fail(served.Save(path))
	served.Close()
	tr.Close()
	loaded, err := deepseek.LoadGraph(path)
	fail(err)
	xo, err := deepseek.NewExecOptions()
	fail(err)
	fail(xo.SetInterOpThreads(1)) // one request per goroutine: no nested fan-out
	ex, err := deepseek.NewExecutor(loaded, xo)
	fail(err)
	xo.Close()
	loaded.Close()
	defer ex.Close()

	ctx := context.Background()
	out, err := ex.Run(ctx, []deepseek.Feed{{Name: "dense", Tensor: eval.Dense}, {Name: "ids", Tensor: eval.IDs}}, []string{"prob"})
	fail(err)
	servedAUC, err := deepseek.AUC(out[0], eval.Labels)
	fail(err)
	out[0].Close()

	// Requests: single rows of the held-out set, prepared up front as batch-1 tensors.
	dense, err := deepseek.Values[float32](eval.Dense)
	fail(err)
	ids, err := deepseek.Values[int64](eval.IDs)
	fail(err)
	const nRows = 64
	reqs := make([][]deepseek.Feed, nRows)
	for r := range reqs {
		d, err := deepseek.NewTensor(dense[r*deepseek.CtrNumDense:(r+1)*deepseek.CtrNumDense], 1, deepseek.CtrNumDense)
		fail(err)
		i, err := deepseek.NewTensor(ids[r*deepseek.CtrNumFields:(r+1)*deepseek.CtrNumFields], 1, deepseek.CtrNumFields)
		fail(err)
		defer d.Close()
		defer i.Close()
		reqs[r] = []deepseek.Feed{{Name: "dense", Tensor: d}, {Name: "ids", Tensor: i}}
	}

	lat := make([]time.Duration, servers*perServer)
	var wg sync.WaitGroup
	start := time.Now()
	for s := 0; s < servers; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for k := 0; k < perServer; k++ {
				t := time.Now()
				out, err := ex.Run(ctx, reqs[(s*31+k)%nRows], []string{"prob"})
				fail(err)
				var p [1]float32
				fail(deepseek.CopyOut(out[0], p[:]))
				out[0].Close()
				lat[s*perServer+k] = time.Since(t)
			}
		}(s)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })

	fmt.Printf("\nresults on %d held-out samples\n", evalN)
	fmt.Printf("  AUC  DCN-v2 %.4f   (reloaded graph %.4f)   oracle %.4f\n", trainedAUC, servedAUC, oracle)
	fmt.Printf("  training: %d steps x %d samples in %.1f s\n", steps, batch, trainTime.Seconds())
	fmt.Printf("  serving, %d goroutines x %d requests of 1 sample: p50 %.0f us, p99 %.0f us, %.0f requests/s\n",
		servers, perServer, float64(lat[len(lat)/2].Microseconds()), float64(lat[len(lat)*99/100].Microseconds()),
		float64(len(lat))/elapsed.Seconds())
	if servedAUC != trainedAUC {
		fmt.Fprintln(os.Stderr, "ctr_example: the reloaded graph scores differently from the trained one")
		os.Exit(1)
	}
}

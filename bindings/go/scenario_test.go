package deepseek

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The shared cross-language scenario (tests/scenario/README.md), step for step as
// tests/c/test_scenario.c runs it; every number must equal the expected files bit for bit.

const scenarioDir = "../../tests/scenario"

const (
	scBatch  = 8
	scDense  = 4
	scFields = 3
	scSteps  = 5
)

// readScenario reads a raw little-endian file of exactly n elements of T.
func readScenario[T float32 | float64 | int64](t testing.TB, name string, n int) []T {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(scenarioDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var zero T
	size := binary.Size(zero)
	if len(raw) != n*size {
		t.Fatalf("%s: %d bytes, want %d", name, len(raw), n*size)
	}
	out := make([]T, n)
	for i := range out {
		b := raw[i*size : (i+1)*size]
		switch p := any(&out[i]).(type) {
		case *float32:
			*p = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case *float64:
			*p = math.Float64frombits(binary.LittleEndian.Uint64(b))
		case *int64:
			*p = int64(binary.LittleEndian.Uint64(b))
		}
	}
	return out
}

// sameBits32 fails unless got and want hold the same float32 bit patterns.
func sameBits32(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i],
				math.Float32bits(want[i]))
		}
	}
}

// scenarioInputs holds the scenario's batch as tensors.
type scenarioInputs struct {
	dense, ids, labels *Tensor
}

func loadScenarioInputs(t testing.TB) scenarioInputs {
	t.Helper()
	dense := must(t)(NewTensor(readScenario[float32](t, "dense.f32", scBatch*scDense), scBatch, scDense))
	ids := must(t)(NewTensor(readScenario[int64](t, "ids.i64", scBatch*scFields), scBatch, scFields))
	labels := must(t)(NewTensor(readScenario[float32](t, "labels.f32", scBatch), scBatch))
	return scenarioInputs{dense, ids, labels}
}

func (in scenarioInputs) Close() {
	in.dense.Close()
	in.ids.Close()
	in.labels.Close()
}

// must returns a helper that fails the test on error and returns the value.
func must(t testing.TB) func(*Tensor, error) *Tensor {
	return func(v *Tensor, err error) *Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// buildScenarioModel is step 1: the seeded DCN-v2.
func buildScenarioModel(t testing.TB) *Graph {
	t.Helper()
	a, err := NewAttrs()
	check(t, err)
	defer a.Close()
	check(t, a.SetInt("num_dense", scDense))
	check(t, a.SetInts("vocab_sizes", []int64{11, 7, 5}))
	check(t, a.SetInt("embed_dim", 4))
	check(t, a.SetInt("cross_layers", 2))
	check(t, a.SetInts("mlp", []int64{8, 4}))
	check(t, a.SetInt("seed", 42))
	g, err := BuildModel("dcn_v2", a)
	check(t, err)
	return g
}

// predict runs g on dense + ids with a fresh executor and returns "prob".
func predict(t testing.TB, g *Graph, in scenarioInputs) []float32 {
	t.Helper()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	defer ex.Close()
	out, err := ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"prob"})
	check(t, err)
	defer out[0].Close()
	prob := make([]float32, scBatch)
	check(t, CopyOut(out[0], prob))
	return prob
}

// trainScenario is step 3: 5 steps of Adam + row-wise Adagrad; returns the trainer and losses.
func trainScenario(t testing.TB, g *Graph, in scenarioInputs) (*Trainer, []float64) {
	t.Helper()
	o, err := NewTrainerOptions()
	check(t, err)
	defer o.Close()
	check(t, o.SetOptimizer("adam", nil))
	check(t, o.SetLR(0.01))
	check(t, o.SetSparseOptimizer("rowwise_adagrad", nil))
	check(t, o.SetSparseLR(0.1))
	check(t, o.SetSeed(1))
	tr, err := NewTrainer(g, "loss", o)
	check(t, err)
	losses := make([]float64, scSteps)
	feeds := []Feed{{"dense", in.dense}, {"ids", in.ids}, {"label", in.labels}}
	for s := range losses {
		losses[s], err = tr.Step(feeds)
		check(t, err)
	}
	return tr, losses
}

// exportScenario runs steps 1, 3 and 4 and returns the exported serving graph.
func exportScenario(t testing.TB, in scenarioInputs) *Graph {
	t.Helper()
	g := buildScenarioModel(t)
	defer g.Close()
	tr, _ := trainScenario(t, g, in)
	defer tr.Close()
	served, err := tr.Export("prob")
	check(t, err)
	return served
}

// TestScenario runs the shared scenario and compares every number bit for bit.
func TestScenario(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()

	model := buildScenarioModel(t)
	defer model.Close()
	sameBits32(t, "initial prob", predict(t, model, in), readScenario[float32](t, "expected_prob_initial.f32", scBatch))

	tr, losses := trainScenario(t, model, in)
	defer tr.Close()
	want := readScenario[float64](t, "expected_losses.f64", scSteps)
	for i := range losses {
		if math.Float64bits(losses[i]) != math.Float64bits(want[i]) {
			t.Fatalf("loss %d = %v, want %v (bitwise)", i, losses[i], want[i])
		}
	}
	if !(losses[scSteps-1] < losses[0]) {
		t.Fatalf("loss did not fall: %v", losses)
	}

	served, err := tr.Export("prob")
	check(t, err)
	defer served.Close()
	trained := readScenario[float32](t, "expected_prob_trained.f32", scBatch)
	sameBits32(t, "trained prob", predict(t, served, in), trained)

	path := filepath.Join(t.TempDir(), "scenario_go.dsg")
	check(t, served.Save(path))
	loaded, err := LoadGraph(path)
	check(t, err)
	defer loaded.Close()
	sameBits32(t, "reloaded prob", predict(t, loaded, in), trained)
}

package deepseek

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestConstantsMatchHeader: consts_gen.go holds every DS_STATUS_* and DS_DTYPE_* code of
// the header with its value (run `go generate` when this fails), and every non-OK status
// has an errors.Is sentinel.
func TestConstantsMatchHeader(t *testing.T) {
	header, err := os.ReadFile("../../include/deepseek.h")
	check(t, err)
	re := regexp.MustCompile(`#define DS_(STATUS|DTYPE)_([A-Z0-9_]+) (\d+)`)
	statuses, dtypes := 0, 0
	for _, m := range re.FindAllStringSubmatch(string(header), -1) {
		v, _ := strconv.Atoi(m[3])
		if m[1] == "STATUS" {
			statuses++
			if got := Status(v).String(); got != "DS_STATUS_"+m[2] {
				t.Errorf("Status(%d) = %s, header says DS_STATUS_%s", v, got, m[2])
			}
		} else {
			dtypes++
			if got := Dtype(v).String(); got != "DS_DTYPE_"+m[2] {
				t.Errorf("Dtype(%d) = %s, header says DS_DTYPE_%s", v, got, m[2])
			}
		}
	}
	if statuses != len(statusNames) || dtypes != len(dtypeNames) {
		t.Fatalf("header has %d statuses and %d dtypes; the binding %d and %d", statuses, dtypes, len(statusNames),
			len(dtypeNames))
	}
	sentinels := []*Error{ErrInvalidArgument, ErrNullPointer, ErrInvalidHandle, ErrInvalidDtype, ErrShapeMismatch,
		ErrOutOfRange, ErrOverflow, ErrBufferTooSmall, ErrDtypeMismatch, ErrOutOfMemory, ErrDeviceUnavailable,
		ErrUnsupported, ErrNotFound, ErrABIMismatch, ErrInternal, ErrCancelled, ErrCorruptData, ErrNonFinite}
	if len(sentinels) != statuses-1 {
		t.Fatalf("%d sentinels for %d non-OK statuses", len(sentinels), statuses-1)
	}
	for i, s := range sentinels {
		e := error(&Error{Code: s.Code, Msg: "from the engine"})
		if !errors.Is(e, s) || s.Code != Status(i+1) {
			t.Errorf("sentinel %v does not match code %d", s, i+1)
		}
		if errors.Is(e, sentinels[(i+1)%len(sentinels)]) {
			t.Errorf("code %d matches another sentinel", i+1)
		}
	}
}

// TestABIMismatch: a library of another ABI version is refused with a message naming both.
func TestABIMismatch(t *testing.T) {
	check(t, checkABI(HeaderABIVersion()))
	if ABIVersion() != HeaderABIVersion() {
		t.Fatalf("library ABI %d, header %d", ABIVersion(), HeaderABIVersion())
	}
	other := HeaderABIVersion() + 1
	err := checkABI(other)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrABIMismatch) {
		t.Fatalf("checkABI(%d) = %v, want ErrABIMismatch", other, err)
	}
	if !strings.Contains(e.Msg, fmt.Sprint(other)) || !strings.Contains(e.Msg, fmt.Sprint(ABIVersion())) {
		t.Fatalf("message %q does not name both versions %d and %d", e.Msg, other, ABIVersion())
	}
}

// badFeed runs the scenario executor with dense replaced by bad and returns the *Error.
func badFeed(t testing.TB, ex *Executor, in scenarioInputs, bad *Tensor) *Error {
	t.Helper()
	out, err := ex.Run(context.Background(), []Feed{{"dense", bad}, {"ids", in.ids}}, []string{"prob"})
	if out != nil || err == nil {
		t.Fatalf("a bad feed ran: %v", out)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not *Error", err, err)
	}
	return e
}

// TestBadFeeds: wrong dtype and shape feeds return the engine's code and its message,
// which names the feed, what it expects and what it was given; the executor stays usable.
func TestBadFeeds(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	defer ex.Close()

	f64 := must(t)(NewTensor(make([]float64, scBatch*scDense), scBatch, scDense))
	defer f64.Close()
	e := badFeed(t, ex, in, f64)
	if e.Code != StatusInvalidDtype || !errors.Is(e, ErrInvalidDtype) {
		t.Fatalf("wrong dtype: %v", e)
	}
	for _, want := range []string{"`dense`", "f32[batch, 4]", "f64[8, 4]"} {
		if !strings.Contains(e.Msg, want) {
			t.Fatalf("wrong-dtype message %q lacks %q", e.Msg, want)
		}
	}

	wide := must(t)(NewTensor(make([]float32, scBatch*5), scBatch, 5))
	defer wide.Close()
	e = badFeed(t, ex, in, wide)
	if e.Code != StatusShapeMismatch || !strings.Contains(e.Msg, "`dense`") || !strings.Contains(e.Msg, "[8, 5]") {
		t.Fatalf("wrong shape: %v", e)
	}

	_, err = ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{"nope"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "`nope`") {
		t.Fatalf("unknown fetch: %v", err)
	}
	_, err = ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids\x00x", in.ids}}, []string{"prob"})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a name with a NUL byte: %v", err)
	}

	// Still usable, and the bits are the scenario's.
	sameBits32(t, "prob after errors", predict(t, g, in), readScenario[float32](t, "expected_prob_initial.f32", scBatch))
}

// TestTensorErrors: data that does not fill the shape, and typed copies of the wrong type.
func TestTensorErrors(t *testing.T) {
	_, err := NewTensor(make([]float32, 3), 2, 2)
	if !errors.Is(err, ErrShapeMismatch) || !strings.Contains(err.Error(), "needs 16") {
		t.Fatalf("short data: %v", err)
	}
	x := must(t)(NewTensor([]int64{1, 2, 3, 4, 5, 6}, 2, 3))
	defer x.Close()
	if _, err := Values[float64](x); !errors.Is(err, ErrDtypeMismatch) {
		t.Fatalf("i64 read as float64: %v", err)
	}
	if err := CopyOut(x, make([]int64, 5)); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("short destination: %v", err)
	}
	v, err := Values[int64](x)
	check(t, err)
	shape, err := x.Shape()
	check(t, err)
	dt, err := x.Dtype()
	check(t, err)
	if fmt.Sprint(v, shape, dt) != "[1 2 3 4 5 6] [2 3] DS_DTYPE_I64" {
		t.Fatalf("round trip: %v %v %v", v, shape, dt)
	}
	for _, b := range [][]bool{{true, false, true}} {
		bt := must(t)(NewTensor(b))
		got, err := Values[bool](bt)
		bt.Close()
		check(t, err)
		if fmt.Sprint(got) != "[true false true]" {
			t.Fatalf("bool round trip: %v", got)
		}
	}
	if _, err := LoadGraph("/nonexistent/model.dsg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestErrorMessagesUnderMigration: 64 goroutines fail different calls at once, many times;
// each must read its own message (the shim copies it inside the failing C call, on the
// OS thread that set it, whatever thread the goroutine runs on next).
func TestErrorMessagesUnderMigration(t *testing.T) {
	in := loadScenarioInputs(t)
	defer in.Close()
	g := buildScenarioModel(t)
	defer g.Close()
	ex, err := NewExecutor(g, nil)
	check(t, err)
	defer ex.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				var err error
				var want string
				if w%2 == 0 {
					name := fmt.Sprintf("missing_%d_%d", w, i)
					_, err = ex.Run(context.Background(), []Feed{{"dense", in.dense}, {"ids", in.ids}}, []string{name})
					want = "`" + name + "`"
				} else {
					_, err = NewTensor(make([]float32, w), int64(w+1))
					want = fmt.Sprintf("%d bytes given", 4*w)
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					errs <- fmt.Errorf("goroutine %d call %d: got %v, want a message with %s", w, i, err, want)
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

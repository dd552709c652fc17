# libdeepseek build driver.
#   make demo   install what is missing, build, run the main demo
#   make test   install what is missing, build, run every test in every language
SHELL := /bin/bash
.DEFAULT_GOAL := demo

RELEASE := target/release
NVRTC_LIB := $(CURDIR)/build/nvrtc/nvidia/cu13/lib
export LD_LIBRARY_PATH := $(NVRTC_LIB)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
export DEEPSEEK_REQUIRE_NVRTC := 1

CC := gcc
CFLAGS := -std=c11 -Wall -Wextra -pedantic -Werror -O1 -g -Iinclude
LINK_SO := -L$(RELEASE) -ldeepseek -Wl,-rpath,$(CURDIR)/$(RELEASE) -lpthread -lm
LINK_A := $(RELEASE)/libdeepseek.a -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc
VALGRIND := valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite

C_TESTS := $(patsubst tests/c/%.c,build/c/%,$(wildcard tests/c/*.c))

.PHONY: setup lib demo tour acceptance test lint rust-tests c-tests exports mlp-check bench-c tsan

setup:
	@scripts/setup.sh

lib: setup
	cargo build --release

build/c/%: tests/c/%.c tests/c/check.h include/deepseek.h lib
	@mkdir -p build/c
	$(CC) $(CFLAGS) $< -o $@ $(LINK_SO)
	$(CC) $(CFLAGS) $< -o $@-static $(LINK_A)

build/examples/%: examples/c/%.c include/deepseek.h lib
	@mkdir -p build/examples
	$(CC) $(CFLAGS) $< -o $@ $(LINK_SO)

demo: build/examples/ctr_demo
	build/examples/ctr_demo build/ctr-demo

# The README's tensor tour still compiles and runs.
tour: build/examples/tensor_tour
	build/examples/tensor_tour > /dev/null

lint: setup
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --no-default-features -- -D warnings

rust-tests: setup
	cargo test

c-tests: $(C_TESTS)
	@for t in $(C_TESTS); do \
	  echo "== $$t (libdeepseek.so)"; $$t || exit 1; \
	  echo "== $$t (libdeepseek.a)"; $$t-static || exit 1; \
	  echo "== $$t under valgrind"; $(VALGRIND) $$t || exit 1; \
	done

# The eager MLP from Rust and from C: the loss must fall, and both must print the same bits.
mlp-check: build/examples/mlp_train
	cargo run --release --quiet --example mlp_train -- 12 --hex > build/mlp_rust.txt
	build/examples/mlp_train 12 --hex > build/mlp_c.txt
	cmp build/mlp_rust.txt build/mlp_c.txt
	build/examples/mlp_train 12 | awk 'NR == 1 { first = $$4 } END { print "mlp loss " first " -> " $$4; exit !($$4 < first) }'
	@echo "mlp-check: Rust and C losses are bitwise identical and falling"

# Issue 5's gmix figure through the trainer (3 seeds, a few seconds). The CTR figures take
# minutes: `cargo run --release --example train_acceptance ctr`.
acceptance: lib
	cargo run --release --quiet --example train_acceptance gmix

# One executor shared by 16 threads, under ThreadSanitizer (nightly Rust, installed if missing).
tsan: setup
	scripts/tsan.sh

exports: lib
	scripts/check_exports.sh $(RELEASE)/libdeepseek.so

# The C baseline of the bindings' per-call benchmark (BENCHMARKS.md, "Bindings"; not a test).
bench-c: lib
	@mkdir -p build/bench
	$(CC) -std=c11 -Wall -Wextra -pedantic -Werror -O2 -Iinclude benches/c/predict_overhead.c -o build/bench/predict_overhead $(LINK_SO)
	build/bench/predict_overhead $(BENCH_ARGS)

# Each binding adds its suite to BINDING_TESTS from its own fragment under mk/.
BINDING_TESTS :=
include $(wildcard mk/*.mk)

test: lint rust-tests c-tests tsan mlp-check acceptance exports tour $(BINDING_TESTS) demo
	@echo "make test: all suites passed"

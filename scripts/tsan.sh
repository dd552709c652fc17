#!/usr/bin/env bash
# Issue 4's thread check: the test that shares one executor between 16 threads (1,000 runs
# each, outputs bitwise equal to a single-threaded run) built and run under ThreadSanitizer.
# TSan needs nightly Rust and the standard library rebuilt with it (rust-src), installed
# here when missing; the build goes to its own target directory. Called by `make tsan`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "tsan: installing nightly Rust (for -Zsanitizer=thread)"
  rustup toolchain install nightly --profile minimal --component rust-src >/dev/null
fi
rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src --toolchain nightly >/dev/null

target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread"
export CARGO_TARGET_DIR=build/tsan
# halt_on_error: the first report fails the run; second_deadlock_stack: fuller reports.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
cargo +nightly test -Zbuild-std --target "$target" --test graph_models -- \
  --exact one_executor_shared_by_16_threads_gives_single_thread_results
echo "tsan: one executor shared by 16 threads runs clean under ThreadSanitizer"

#!/usr/bin/env bash
# Fails unless libdeepseek.so exports only ds_ functions (the C ABI) and nothing of Rust's.
set -euo pipefail
lib=${1:-target/release/libdeepseek.so}
symbols=$(nm -D --defined-only "$lib" | awk '{print $3}')
stray=$(grep -v '^ds_' <<<"$symbols" || true)
count=$(grep -c '^ds_' <<<"$symbols")
if [ -n "$stray" ]; then
  echo "check_exports: $lib exports symbols outside the ds_ prefix:" >&2
  echo "$stray" >&2
  exit 1
fi
echo "check_exports: $lib exports $count symbols, all ds_"

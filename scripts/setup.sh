#!/usr/bin/env bash
# Installs what the build and tests need and the machine lacks. Idempotent; quiet when
# everything is present. Called by `make demo` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
command -v nm >/dev/null || need_apt+=(binutils)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo (Rust >= 1.88) is required; install it with rustup" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true

# NVRTC from PyPI, so every kernels/*.cu is compiled in the tests even without a GPU.
if [ ! -e build/nvrtc/nvidia/cu13/lib/libnvrtc.so.13 ]; then
  echo "setup: installing NVRTC 13.0 (PyPI wheel nvidia-cuda-nvrtc) into build/nvrtc"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    --target build/nvrtc nvidia-cuda-nvrtc==13.0.88
fi

# What each binding's toolchain needs (C++, Go, Java), one script per language.
for part in scripts/setup.d/*.sh; do
  if [ -e "$part" ]; then bash "$part"; fi
done

#!/usr/bin/env bash
# The C++ binding's toolchain: cmake, g++ and GoogleTest (Debian's libgtest-dev). Idempotent;
# quiet when everything is present.
set -euo pipefail

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
[ -e /usr/include/gtest/gtest.h ] || need_apt+=(libgtest-dev)
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]} from Debian (C++ binding)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

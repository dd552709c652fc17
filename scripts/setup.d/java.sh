#!/usr/bin/env bash
# The Java binding's toolchain: a JDK (javac and the JNI headers) and Maven, from Debian when
# missing. Idempotent and quiet when both are present. Maven fetches JUnit and its plugins into
# ~/.m2 by itself on the first `make java-tests`.
set -euo pipefail

need=()
if ! command -v javac >/dev/null; then
  need+=(default-jdk)
else
  home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
  [ -e "$home/include/jni.h" ] || need+=(default-jdk)
fi
command -v mvn >/dev/null || need+=(maven)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]} from Debian (Java binding)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

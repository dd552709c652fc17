#!/usr/bin/env bash
# The Go toolchain for bindings/go (cgo, so gcc too). Idempotent; quiet when present.
# Needs Go >= 1.22 (go.mod); Debian's golang-go is tried when no go is found, and a clear
# message says what to do when the one found is older.
set -euo pipefail

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  elif [ -x /usr/lib/go/bin/go ]; then echo /usr/lib/go/bin/go
  fi
}

go_bin=$(find_go)
if [ -z "$go_bin" ] || ! command -v gcc >/dev/null 2>&1; then
  echo "setup: installing golang-go and gcc from Debian (for bindings/go)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go gcc >/dev/null
  go_bin=$(find_go)
fi

version=$("$go_bin" env GOVERSION 2>/dev/null || "$go_bin" version | awk '{print $3}')
minor=$(echo "$version" | sed -E 's/^go1\.([0-9]+).*/\1/')
if ! [[ "$minor" =~ ^[0-9]+$ ]] || ((minor < 22)); then
  echo "setup: bindings/go needs Go >= 1.22, found $version at $go_bin;" \
    "install a newer one from https://go.dev/dl into /usr/local/go" >&2
  exit 1
fi

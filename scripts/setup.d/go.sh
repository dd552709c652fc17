#!/usr/bin/env bash
# The Go toolchain for bindings/go (cgo, so gcc too). Idempotent; quiet when present.
# Needs Go >= 1.22 (go.mod); when none is found, or an older one, Go is installed from the
# Go module proxy.
set -euo pipefail

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  elif [ -x /usr/lib/go/bin/go ]; then echo /usr/lib/go/bin/go
  fi
}

# A Go toolchain from the Go module proxy (the same archive `GOTOOLCHAIN` downloads) into
# /usr/local/go: Debian's golang-go is older than the 1.22 that go.mod needs.
GO_TOOLCHAIN=1.22.12
install_go() {
  echo "setup: installing Go $GO_TOOLCHAIN from proxy.golang.org into /usr/local/go (for bindings/go)"
  local tmp
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/go.zip" \
    "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_TOOLCHAIN.linux-amd64.zip"
  python3 - "$tmp/go.zip" "$tmp" <<'PY'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = info.external_attr >> 16
        if mode:
            os.chmod(path, mode & 0o777)
PY
  rm -rf /usr/local/go
  mv "$tmp/golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN.linux-amd64" /usr/local/go
  rm -rf "$tmp"
}

go_version_ok() {
  local version minor
  version=$("$1" env GOVERSION 2>/dev/null || "$1" version | awk '{print $3}')
  minor=$(echo "$version" | sed -E 's/^go1\.([0-9]+).*/\1/')
  [[ "$minor" =~ ^[0-9]+$ ]] && ((minor >= 22))
}

if ! command -v gcc >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  echo "setup: installing gcc and curl from Debian (for bindings/go)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc curl >/dev/null
fi
go_bin=$(find_go)
if [ -z "$go_bin" ] || ! go_version_ok "$go_bin"; then
  install_go
  go_bin=/usr/local/go/bin/go
  go_version_ok "$go_bin" || { echo "setup: the Go installed in /usr/local/go does not run" >&2; exit 1; }
fi

#!/usr/bin/env bash
# Builds the pinned test binaries from the Go module proxy into a cache outside the clone,
# keyed by version, so a second run (or CI on the same machine) finds them warm.
#
#   scripts/test-binaries.sh [name ...]   build the named binaries (default: all), print their paths
#   scripts/test-binaries.sh --path NAME  print the cached path of NAME (build it when missing)
#   scripts/test-binaries.sh --cached NAME  print the cached path of NAME, or fail when it is not built
#
# Cache root: $SWITCHYARD_BIN_CACHE (default: $HOME/.cache/switchyard/bin).
set -euo pipefail

NATS_SERVER_VERSION=v2.15.2

CACHE_ROOT="${SWITCHYARD_BIN_CACHE:-$HOME/.cache/switchyard/bin}"

log() { printf '[test-binaries] %s\n' "$*" >&2; }

need_go() {
  command -v go >/dev/null 2>&1 || { log "Go is required to build test binaries (https://go.dev/dl/)"; exit 1; }
}

# build_module NAME VERSION MODULE_PATH: `go install` into CACHE_ROOT/NAME-VERSION, atomically.
build_module() {
  local name=$1 version=$2 module=$3
  local dir="$CACHE_ROOT/$name-$version"
  if [[ -x "$dir/$name" ]]; then
    echo "$dir/$name"; return 0
  fi
  need_go
  log "building $name $version from $module (first run only; takes a few minutes)"
  local tmp
  tmp=$(mktemp -d "$CACHE_ROOT/.build-$name-XXXXXX")
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install "$module@$version" >&2
  mv "$tmp/$(basename "${module%/v[0-9]*}")" "$tmp/$name" 2>/dev/null || true
  [[ -x "$tmp/$name" ]] || { log "build of $name produced no binary"; ls -la "$tmp" >&2; exit 1; }
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "$dir/$name"
}

build() {
  case "$1" in
    nats-server) build_module nats-server "$NATS_SERVER_VERSION" github.com/nats-io/nats-server/v2 ;;
    *) log "unknown test binary: $1"; exit 2 ;;
  esac
}

mkdir -p "$CACHE_ROOT"
if [[ "${1:-}" == "--cached" ]]; then
  case "$2" in
    nats-server) p="$CACHE_ROOT/nats-server-$NATS_SERVER_VERSION/nats-server" ;;
    *) log "unknown test binary: $2"; exit 2 ;;
  esac
  [[ -x "$p" ]] || exit 1
  echo "$p"; exit 0
fi
if [[ "${1:-}" == "--path" ]]; then
  build "$2"; exit 0
fi
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(nats-server)
for n in "${names[@]}"; do build "$n"; done

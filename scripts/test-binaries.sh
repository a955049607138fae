#!/usr/bin/env bash
# Builds the pinned test binaries from the Go module proxy into a cache outside the clone,
# keyed by version, so a second run (or CI on the same machine) finds them warm.
#
#   scripts/test-binaries.sh [name ...]   build the named binaries (default: all), print their paths
#   scripts/test-binaries.sh --path NAME  print the cached path of NAME (build it when missing)
#   scripts/test-binaries.sh --cached NAME  print the cached path of NAME, or fail when it is not built
#
# Names: nats-server, etcd, kube-apiserver, kube-controller-manager, kubectl, helm, glua (gopher-lua,
# the Lua VM Argo CD runs health checks with) and monitoring-crds (a directory holding the
# ServiceMonitor and PodMonitor CustomResourceDefinitions, generated from prometheus-operator's API types).
#
# Cache root: $SWITCHYARD_BIN_CACHE (default: $HOME/.cache/switchyard/bin).
set -euo pipefail

NATS_SERVER_VERSION=v2.15.2
KUBERNETES_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v4.3.1
GLUA_VERSION=v1.1.2
MONITORING_API_VERSION=v0.95.2
CONTROLLER_TOOLS_VERSION=v0.23.0

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

# wrapper_module DIR MODULE VERSION: a Go module requiring MODULE@VERSION, for modules whose own
# go.mod has replace directives (so `go install module@version` refuses them).
wrapper_module() {
  local dir=$1 module=$2 version=$3
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'module switchyard.local/testbinaries\n\ngo 1.26\n\nrequire %s %s\n' "$module" "$version" > "$dir/go.mod"
}

# build_kubernetes NAME: kube-apiserver, kube-controller-manager or kubectl from k8s.io/kubernetes, whose
# go.mod points its staging modules (k8s.io/api, client-go…) at local folders with v0.0.0; each
# gets a replace line to its published v0.<minor>.<patch>. Version ldflags make /version right.
build_kubernetes() {
  local name=$1 version=$KUBERNETES_VERSION
  local dir="$CACHE_ROOT/$name-$version"
  if [[ -x "$dir/$name" ]]; then echo "$dir/$name"; return 0; fi
  need_go
  log "building $name $version from k8s.io/kubernetes (first run only; takes several minutes)"
  local src="$CACHE_ROOT/.src/kubernetes-$version"
  if [[ ! -f "$src/.ready" ]]; then
    wrapper_module "$src" k8s.io/kubernetes "$version"
    local gomod staging_version="v0.${version#v1.}"
    gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f "$gomod" ]] || { log "cannot download k8s.io/kubernetes $version"; exit 1; }
    {
      printf '\nreplace (\n'
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | while read -r m; do
        printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"
      done
      printf ')\n'
    } >> "$src/go.mod"
    (cd "$src" && GOFLAGS=-mod=mod go mod download k8s.io/kubernetes >&2 && GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$version" "k8s.io/kubernetes/cmd/kube-controller-manager@$version" "k8s.io/kubernetes/cmd/kubectl@$version" >&2)
    touch "$src/.ready"
  fi
  local minor=${version#v1.}; minor=${minor%%.*}
  local pkg ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  local tmp; tmp=$(mktemp -d "$CACHE_ROOT/.build-$name-XXXXXX")
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w$ldflags" -o "$tmp/$name" "k8s.io/kubernetes/cmd/$name" >&2)
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "$dir/$name"
}

# build_etcd: etcd from go.etcd.io/etcd/server/v3 (its go.mod has replace lines, hence the wrapper).
build_etcd() {
  local version=$ETCD_VERSION dir="$CACHE_ROOT/etcd-$ETCD_VERSION"
  if [[ -x "$dir/etcd" ]]; then echo "$dir/etcd"; return 0; fi
  need_go
  log "building etcd $version from go.etcd.io/etcd/server/v3 (first run only)"
  local src="$CACHE_ROOT/.src/etcd-$version"
  wrapper_module "$src" go.etcd.io/etcd/server/v3 "$version"
  local tmp; tmp=$(mktemp -d "$CACHE_ROOT/.build-etcd-XXXXXX")
  (cd "$src" && GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$version" >&2 && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$tmp/etcd" go.etcd.io/etcd/server/v3 >&2)
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "$dir/etcd"
}

# build_monitoring_crds: the monitoring.coreos.com/v1 ServiceMonitor and PodMonitor CRDs, generated
# as upstream does (controller-gen's crd generator, crdVersions=v1, over the v1 API package) from
# the published API types module; the operator's root module is not needed. Prints the directory.
build_monitoring_crds() {
  local version=$MONITORING_API_VERSION dir="$CACHE_ROOT/monitoring-crds-$MONITORING_API_VERSION"
  local api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
  if monitoring_crds_complete "$dir"; then echo "$dir"; return 0; fi
  need_go
  log "generating the ServiceMonitor and PodMonitor CRDs from $api $version (first run only)"
  local src="$CACHE_ROOT/.src/monitoring-crds-$version"
  wrapper_module "$src" "$api" "$version"
  local tmp; tmp=$(mktemp -d "$CACHE_ROOT/.build-monitoring-crds-XXXXXX")
  (cd "$src" && GOFLAGS=-mod=mod go get "$api@$version" "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION" >&2 \
    && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$tmp/.controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen >&2 \
    && GOFLAGS=-mod=mod "$tmp/.controller-gen" crd:crdVersions=v1 "paths=$api/v1" "output:crd:dir=$tmp" >&2)
  find "$tmp" -mindepth 1 -maxdepth 1 ! -name 'monitoring.coreos.com_servicemonitors.yaml' ! -name 'monitoring.coreos.com_podmonitors.yaml' -exec rm -rf {} +
  monitoring_crds_complete "$tmp" || { log "controller-gen produced no ServiceMonitor/PodMonitor CRD"; ls -la "$tmp" >&2; exit 1; }
  chmod 755 "$tmp"
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "$dir"
}

monitoring_crds_complete() {
  [[ -s "$1/monitoring.coreos.com_servicemonitors.yaml" && -s "$1/monitoring.coreos.com_podmonitors.yaml" ]]
}

build() {
  case "$1" in
    nats-server) build_module nats-server "$NATS_SERVER_VERSION" github.com/nats-io/nats-server/v2 ;;
    kube-apiserver | kube-controller-manager | kubectl) build_kubernetes "$1" ;;
    etcd) build_etcd ;;
    helm) build_module helm "$HELM_VERSION" helm.sh/helm/v4/cmd/helm ;;
    glua) build_module glua "$GLUA_VERSION" github.com/yuin/gopher-lua/cmd/glua ;;
    monitoring-crds) build_monitoring_crds ;;
    *) log "unknown test binary: $1"; exit 2 ;;
  esac
}

mkdir -p "$CACHE_ROOT"
if [[ "${1:-}" == "--cached" ]]; then
  case "$2" in
    nats-server) p="$CACHE_ROOT/nats-server-$NATS_SERVER_VERSION/nats-server" ;;
    kube-apiserver | kube-controller-manager | kubectl) p="$CACHE_ROOT/$2-$KUBERNETES_VERSION/$2" ;;
    etcd) p="$CACHE_ROOT/etcd-$ETCD_VERSION/etcd" ;;
    helm) p="$CACHE_ROOT/helm-$HELM_VERSION/helm" ;;
    glua) p="$CACHE_ROOT/glua-$GLUA_VERSION/glua" ;;
    monitoring-crds)
      p="$CACHE_ROOT/monitoring-crds-$MONITORING_API_VERSION"
      monitoring_crds_complete "$p" || exit 1
      echo "$p"; exit 0 ;;
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

#!/usr/bin/env bash
# The GitOps engines our status is judged by, built from pinned Go modules (issue 15).
#
#   hack/engines.sh build     build argocd-health (Argo CD's util/lua) and kstatus (cli-utils'
#                             kstatus) from hack/engines/*/go.{mod,sum} (cached; no-op when built)
#   hack/engines.sh bin-dir   print the directory holding both binaries
#   hack/engines.sh regen     re-pin hack/engines/*/go.mod to hack/versions.env and `go mod tidy`
#                             (needs the module proxy)
#
# Environment:
#   BUDAI_ENGINES_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/budai/engines);
#                        binaries go to <root>/<versions>_<hash of the wrapper modules>/bin
#   BUDAI_CP_JOBS        parallel compile jobs (go build -p; default 2)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WRAPPERS="$ROOT/hack/engines"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$ROOT/hack/versions.env"

# Bump when the way binaries are built changes (flags, ldflags), to invalidate old caches.
RECIPE_REV=1
CACHE_ROOT=${BUDAI_ENGINES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/budai/engines}

log() { printf '[engines] %s\n' "$*" >&2; }
die() { printf '[engines] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

cache_key() {
    local h
    h=$( { echo "recipe=$RECIPE_REV toolchain=$ARGOCD_GO_TOOLCHAIN"
           cat "$WRAPPERS"/{argocd-health,kstatus}/{go.mod,go.sum,main.go}; } | sha256sum | cut -c1-10)
    echo "argocd-${ARGOCD_VERSION}_cli-utils-${CLI_UTILS_VERSION}_${h}"
}
CACHE_DIR="$CACHE_ROOT/$(cache_key)"
BIN="$CACHE_DIR/bin"

check_pins() {
    local bad=0
    pinned() { awk -v m="$2" -v v="$3" '($1 == "require" && $2 == m && $3 == v) || ($1 == m && $2 == v) {f=1} END {exit !f}' "$1"; }
    pinned "$WRAPPERS/argocd-health/go.mod" github.com/argoproj/argo-cd/v3 "$ARGOCD_VERSION" || bad=1
    grep -qx "toolchain $ARGOCD_GO_TOOLCHAIN" "$WRAPPERS/argocd-health/go.mod" || bad=1
    pinned "$WRAPPERS/kstatus/go.mod" sigs.k8s.io/cli-utils "$CLI_UTILS_VERSION" || bad=1
    (( bad == 0 )) || die "hack/engines/*/go.mod do not match hack/versions.env; run: bash hack/engines.sh regen"
}

# build_one NAME GOTOOLCHAIN
build_one() {
    local name=$1 toolchain=$2 t0 rc=0
    if [[ -x "$BIN/$name" && -f "$BIN/.$name.ok" ]]; then
        log "$name: cached"
        return 0
    fi
    t0=$(now)
    log "$name: building (downloads modules from the Go proxy on a fresh machine; log: $CACHE_DIR/build-$name.log)"
    (cd "$WRAPPERS/$name" && GOTOOLCHAIN=$toolchain go build -p "${BUDAI_CP_JOBS:-2}" -trimpath \
        -ldflags "-s -w" -o "$CACHE_DIR/tmp-$name" .) >"$CACHE_DIR/build-$name.log" 2>&1 || rc=$?
    if (( rc != 0 )); then
        tail -n 40 "$CACHE_DIR/build-$name.log" >&2
        die "$name: go build failed after $(( $(now) - t0 ))s"
    fi
    mv -f "$CACHE_DIR/tmp-$name" "$BIN/$name"
    touch "$BIN/.$name.ok"
    log "$name: built in $(( $(now) - t0 ))s"
}

cmd_build() {
    if [[ -x "$BIN/argocd-health" && -f "$BIN/.argocd-health.ok" && -x "$BIN/kstatus" && -f "$BIN/.kstatus.ok" ]]; then
        log "cached in $BIN"
        return 0
    fi
    command -v go >/dev/null || die "Go is not installed (need >= $GO_MIN_VERSION): https://go.dev/dl/"
    check_pins
    export CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
    mkdir -p "$BIN"
    exec 9>"$CACHE_DIR/.lock"
    if ! flock -n 9; then
        log "another build of $(basename "$CACHE_DIR") is running; waiting for it..."
        flock 9
    fi
    # kstatus builds with the local toolchain; argo-cd v3.6 declares go 1.27, so that module
    # names its toolchain and the go command fetches it (once) from the module proxy.
    build_one kstatus "local"
    build_one argocd-health "$ARGOCD_GO_TOOLCHAIN"
    echo "argocd=$ARGOCD_VERSION cli-utils=$CLI_UTILS_VERSION toolchain=$ARGOCD_GO_TOOLCHAIN built=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$CACHE_DIR/BUILDINFO"
    exec 9>&-
}

cmd_regen() {
    command -v go >/dev/null || die "Go is not installed"
    export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false"
    local mod="$WRAPPERS/argocd-health/go.mod" upstream
    upstream=$(cd /tmp && GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN go mod download -json \
        "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
    [[ -f "$upstream" ]] || die "cannot download github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION"
    # Keep the header comment; re-pin; take argo-cd's own replace block (its k8s.io staging
    # modules only resolve with it), minus its local gitops-engine replace.
    {
        sed -n '/^\/\//p' "$mod"
        printf 'module budai.local/engines/argocd-health\n\ngo %s\n\ntoolchain %s\n\nrequire github.com/argoproj/argo-cd/v3 %s\n\n' \
            "$(awk '$1 == "go" {print $2; exit}' "$upstream")" "$ARGOCD_GO_TOOLCHAIN" "$ARGOCD_VERSION"
        sed -n '/^replace (/,/^)/p' "$upstream"
    } >"$mod.new"
    mv "$mod.new" "$mod"
    rm -f "$WRAPPERS/argocd-health/go.sum"
    (cd "$WRAPPERS/argocd-health" && GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN go mod tidy)
    mod="$WRAPPERS/kstatus/go.mod"
    sed -i -E "s|^require sigs.k8s.io/cli-utils .*|require sigs.k8s.io/cli-utils $CLI_UTILS_VERSION|" "$mod"
    (cd "$WRAPPERS/kstatus" && go get "sigs.k8s.io/cli-utils@$CLI_UTILS_VERSION" && go mod tidy)
    log "regenerated; review and commit hack/engines/*/go.{mod,sum}"
}

case "${1:-}" in
    build) cmd_build ;;
    bin-dir) echo "$BIN" ;;
    regen) cmd_regen ;;
    *) echo "usage: $0 build|bin-dir|regen" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A real Kubernetes control plane for tests and the demo, without Docker (issue 5).
#
#   hack/control-plane.sh build    build kube-apiserver, kubectl, kube-controller-manager, etcd and
#                                  helm from the versions in hack/versions.env (cached; no-op when
#                                  the binaries exist)
#   hack/control-plane.sh up       start etcd, kube-apiserver and a trimmed kube-controller-manager
#                                  on free loopback ports; wait until ready
#   hack/control-plane.sh down     stop what `up` started (by pid file) and remove its state dir
#   hack/control-plane.sh env      print `export KUBECONFIG=... PATH=...` (eval "$(... env)")
#   hack/control-plane.sh status   show the processes, their RSS and the server URL (exit 1 if one
#                                  is down, 3 if not up)
#   hack/control-plane.sh bin-dir  print the directory holding the cached binaries
#   hack/control-plane.sh regen    rewrite hack/controlplane/*/go.mod from hack/versions.env and
#                                  run `go mod tidy` (needs the module proxy)
#
# Environment:
#   BUDAI_CP_CACHE      cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/budai/controlplane);
#                       binaries go to <root>/<versions>_<hash of wrapper go.mod/go.sum>/bin
#   BUDAI_CP_STATE      state dir for `up`/`down`/`env`/`status` (default <repo>/.tmp/controlplane)
#   BUDAI_CP_CONTROLLERS controllers for kube-controller-manager (default: garbage collector,
#                       namespace, serviceaccount, serviceaccount-token, root CA publisher);
#                       set to "none" to run without kube-controller-manager
#   BUDAI_CP_WATCH_PID  with `up`: a watchdog runs `down` when this process exits (used by the
#                       pytest fixture so that a killed test run leaves nothing behind)
#   BUDAI_CP_KEEP_LOGS  with `down`: keep <state>/logs
#   BUDAI_CP_JOBS       parallel compile jobs (go build -p; default 2)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/hack/control-plane.sh"
WRAPPERS="$ROOT/hack/controlplane"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$ROOT/hack/versions.env"

K8S_VER=${KUBERNETES_VERSION#v}          # 1.37.2
K8S_MAJOR=${K8S_VER%%.*}                 # 1
K8S_MINOR=${K8S_VER#*.}; K8S_MINOR=${K8S_MINOR%%.*}   # 37
STAGING_VERSION="v0.${K8S_VER#*.}"       # v0.37.2: staging tag kubernetes-1.X.Y is module v0.X.Y

# Bump when the way binaries are built changes (flags, ldflags), to invalidate old caches.
RECIPE_REV=1
DEFAULT_CONTROLLERS="garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller"

CACHE_ROOT=${BUDAI_CP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/budai/controlplane}
STATE=${BUDAI_CP_STATE:-$ROOT/.tmp/controlplane}

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
fmt_secs() { local s=$1; if (( s >= 60 )); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi; }

# ---------------------------------------------------------------------------------------------
# Cache key and paths
# ---------------------------------------------------------------------------------------------
cache_key() {
    local h
    h=$( { echo "recipe=$RECIPE_REV"; cat "$WRAPPERS"/{kube,etcd,helm}/go.{mod,sum}; } | sha256sum | cut -c1-10)
    echo "k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_${h}"
}
CACHE_DIR="$CACHE_ROOT/$(cache_key)"
BIN="$CACHE_DIR/bin"

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------
go_env() {
    # Reproducible, static builds from the committed go.mod/go.sum; ignore a stray go.work.
    export CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
}

check_go() {
    command -v go >/dev/null || die "Go is not installed (need >= $GO_MIN_VERSION): https://go.dev/dl/"
    local have
    have=$(go env GOVERSION); have=${have#go}
    if [[ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$have" | sort -V | head -1)" != "$GO_MIN_VERSION" ]]; then
        [[ "$(go env GOTOOLCHAIN)" == local ]] &&
            die "Go $have is too old (need >= $GO_MIN_VERSION); install it or set GOTOOLCHAIN=go$GO_MIN_VERSION"
    fi
}

# The wrappers' go.mod must pin exactly what versions.env says.
check_pins() {
    local bad=0
    # pinned FILE MODULE VERSION: a require line (single or in a block) for exactly that version.
    pinned() { awk -v m="$2" -v v="$3" '($1 == "require" && $2 == m && $3 == v) || ($1 == m && $2 == v) {f=1} END {exit !f}' "$1"; }
    pinned "$WRAPPERS/kube/go.mod" k8s.io/kubernetes "$KUBERNETES_VERSION" || bad=1
    if grep -E '^\s+k8s\.io/[a-z0-9-]+ => k8s\.io/' "$WRAPPERS/kube/go.mod" | grep -vq " ${STAGING_VERSION}\$"; then bad=1; fi
    pinned "$WRAPPERS/etcd/go.mod" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" || bad=1
    pinned "$WRAPPERS/helm/go.mod" helm.sh/helm/v3 "$HELM_VERSION" || bad=1
    (( bad == 0 )) || die "hack/controlplane/*/go.mod do not match hack/versions.env; run: bash hack/control-plane.sh regen"
}

# build_component NAME DIR OUTPUT-BINARIES LDFLAGS PACKAGES...
build_component() {
    local name=$1 dir=$2 outs=$3 ldflags=$4; shift 4
    local stamp="$BIN/.$name.ok"
    if [[ -f "$stamp" ]]; then
        local o ok=1
        for o in $outs; do [[ -x "$BIN/$o" ]] || ok=0; done
        if (( ok )); then log "$name: cached ($outs)"; return 0; fi
    fi
    local t0 tmp logf total ticker rc=0
    t0=$(now)
    tmp="$CACHE_DIR/tmp-$name"; rm -rf "$tmp"; mkdir -p "$tmp"
    logf="$CACHE_DIR/build-$name.log"
    log "$name: resolving packages (downloads modules from the Go proxy on a fresh machine)..."
    total=$(cd "$dir" && go list -deps "$@" | wc -l) || die "$name: 'go list' failed (see above)"
    log "$name: $total packages to compile at most; resolved in $(fmt_secs $(( $(now) - t0 )))"
    log "$name: compiling with -p ${BUDAI_CP_JOBS:-2} (log: $logf)"
    # Progress: `go build -v` names each package it compiles (cached ones are skipped).
    ( while sleep 30; do
        printf '[control-plane] %s: %s/%s packages compiled, %s elapsed\n' \
            "$name" "$(wc -l <"$logf" 2>/dev/null || echo 0)" "$total" "$(fmt_secs $(( $(now) - t0 )))" >&2
      done ) &
    ticker=$!
    # One package: name the binary explicitly (etcd's main package is the module root, .../v3).
    local out="$tmp/"; if (( $# == 1 )); then out="$tmp/$outs"; fi
    (cd "$dir" && go build -v -p "${BUDAI_CP_JOBS:-2}" -trimpath -ldflags "$ldflags" -o "$out" "$@") 2>"$logf" || rc=$?
    kill "$ticker" 2>/dev/null || true; wait "$ticker" 2>/dev/null || true
    if (( rc != 0 )); then
        tail -n 40 "$logf" >&2
        die "$name: go build failed after $(fmt_secs $(( $(now) - t0 ))) (full log: $logf)"
    fi
    local o
    for o in $outs; do mv -f "$tmp/$o" "$BIN/$o"; done
    rm -rf "$tmp"
    touch "$stamp"
    log "$name: built in $(fmt_secs $(( $(now) - t0 )))"
}

kube_ldflags() {
    local ld="-s -w" p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$K8S_MAJOR -X $p.gitMinor=$K8S_MINOR"
        ld+=" -X $p.gitTreeState=clean -X $p.gitCommit=module-${KUBERNETES_VERSION}"
    done
    echo "$ld"
}

helm_ldflags() {
    # Helm's own Makefile: default KubeVersion for `helm template`/lint = its client-go minor.
    local cg major minor
    cg=$(awk '$1 == "k8s.io/client-go" {print $2}' "$WRAPPERS/helm/go.mod")
    cg=${cg#v0.}; major=1; minor=${cg%%.*}
    local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ld+=" -X helm.sh/helm/v3/internal/version.gitCommit=module-$HELM_VERSION"
    ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
    ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
    echo "$ld"
}

have_all_binaries() {
    local c
    for c in kube etcd helm; do [[ -f "$BIN/.$c.ok" ]] || return 1; done
    for c in kube-apiserver kubectl kube-controller-manager etcd helm; do [[ -x "$BIN/$c" ]] || return 1; done
}

cmd_build() {
    if have_all_binaries; then
        log "binaries for $(basename "$CACHE_DIR") are cached in $BIN"
        return 0
    fi
    check_go
    check_pins
    go_env
    mkdir -p "$BIN"
    local t0; t0=$(now)
    # One build at a time per cache entry (make and a test run may race on a fresh machine).
    exec 9>"$CACHE_DIR/.lock"
    if ! flock -n 9; then
        log "another build of $(basename "$CACHE_DIR") is running; waiting for it..."
        flock 9
    fi
    log "building into $BIN with $(go env GOVERSION) (a cold build takes a while; later runs reuse it)"
    build_component kube "$WRAPPERS/kube" "kube-apiserver kubectl kube-controller-manager" "$(kube_ldflags)" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kube-controller-manager
    build_component etcd "$WRAPPERS/etcd" "etcd" \
        "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION" go.etcd.io/etcd/server/v3
    build_component helm "$WRAPPERS/helm" "helm" "$(helm_ldflags)" helm.sh/helm/v3/cmd/helm
    {
        echo "kubernetes=$KUBERNETES_VERSION etcd=$ETCD_VERSION helm=$HELM_VERSION"
        echo "go=$(go env GOVERSION) built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$CACHE_DIR/BUILDINFO"
    exec 9>&-
    log "done in $(fmt_secs $(( $(now) - t0 ))); cache size $(du -sh "$CACHE_DIR" | cut -f1)"
    local other
    for other in "$CACHE_ROOT"/*/; do
        other=${other%/}
        [[ "$other" == "$CACHE_DIR" || ! -d "$other/bin" ]] && continue
        log "note: older build $(du -sh "$other" | cut -f1) in $other (remove it when unused)"
    done
}

# ---------------------------------------------------------------------------------------------
# regen: wrapper go.mod files from versions.env
# ---------------------------------------------------------------------------------------------
cmd_regen() {
    check_go
    export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false"
    local upstream m
    upstream=$(cd /tmp && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
        sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
    [[ -f "$upstream" ]] || die "cannot download k8s.io/kubernetes@$KUBERNETES_VERSION"
    local required replaces=""
    required=$(awk '/^require \(/{r=1; next} r && /^\)/{r=0} r {print $1}' "$upstream")
    # shellcheck disable=SC2013 # module paths contain no spaces
    for m in $(grep -E '=> \./staging/' "$upstream" | awk '{print $1}' | sort -u); do
        if (cd /tmp && go list -m "$m@$STAGING_VERSION" >/dev/null 2>&1); then
            replaces+=$'\t'"$m => $m $STAGING_VERSION"$'\n'
        elif grep -qx "$m" <<<"$required"; then
            die "$m@$STAGING_VERSION is required by k8s.io/kubernetes but not served; pick another KUBERNETES_VERSION"
        else
            log "skipping $m: not published, and only in upstream's replace block"
        fi
    done
    cat >"$WRAPPERS/kube/go.mod" <<EOF
// Wrapper module: builds kube-apiserver, kubectl and kube-controller-manager from the
// published k8s.io/kubernetes module. Its staging modules are required at the fake
// version v0.0.0, so each is replaced with its published v0.X.Y twin.
// Generated by: bash hack/control-plane.sh regen (from hack/versions.env)
module budai.local/controlplane/kube

go 1.26.0

tool (
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
	k8s.io/kubernetes/cmd/kubectl
)

require k8s.io/kubernetes $KUBERNETES_VERSION

replace (
${replaces})
EOF
    cat >"$WRAPPERS/etcd/go.mod" <<EOF
// Wrapper module: builds etcd from go.etcd.io/etcd/server/v3 (its root package is
// \`package main\`). Kept apart from the Kubernetes wrapper so that minimal version
// selection does not move the API server's etcd client, grpc or otel versions.
// Generated by: bash hack/control-plane.sh regen (from hack/versions.env)
module budai.local/controlplane/etcd

go 1.26.0

tool go.etcd.io/etcd/server/v3

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
    cat >"$WRAPPERS/helm/go.mod" <<EOF
// Wrapper module: builds helm from helm.sh/helm/v3 with a committed go.sum.
// Generated by: bash hack/control-plane.sh regen (from hack/versions.env)
module budai.local/controlplane/helm

go 1.26.0

tool helm.sh/helm/v3/cmd/helm

require helm.sh/helm/v3 $HELM_VERSION
EOF
    for m in kube etcd helm; do
        rm -f "$WRAPPERS/$m/go.sum"
        log "go mod tidy in hack/controlplane/$m"
        (cd "$WRAPPERS/$m" && go mod tidy)
    done
    log "regenerated; review and commit hack/controlplane/*/go.{mod,sum}"
}

# ---------------------------------------------------------------------------------------------
# up / down / status / env
# ---------------------------------------------------------------------------------------------
MARKER=".budai-controlplane"

# Is PID alive and one of ours (its command line mentions our state dir)?
is_ours() {
    local pid=$1
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$STATE/"
}

pid_of() { [[ -f "$STATE/pids/$1.pid" ]] && cat "$STATE/pids/$1.pid" || true; }

free_ports() {
    # Ask the kernel for N distinct free loopback ports.
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_for NAME SECONDS PID CMD...: poll CMD every 0.2s while PID lives.
wait_for() {
    local name=$1 secs=$2 pid=$3; shift 3
    local deadline=$(( $(now) + secs ))
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited; last lines of $STATE/logs/$name.log:"
            tail -n 30 "$STATE/logs/$name.log" >&2 || true
            return 1
        fi
        if (( $(now) >= deadline )); then
            log "$name not ready after ${secs}s; last lines of $STATE/logs/$name.log:"
            tail -n 30 "$STATE/logs/$name.log" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

# start NAME CMD...: run CMD in its own session, log to logs/NAME.log, record its pid.
start() {
    local name=$1; shift
    setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name.pid"
}

gen_pki() {
    local d="$STATE/pki"
    mkdir -p "$d"; chmod 700 "$d"
    (
        cd "$d"
        local ossl=(openssl)
        "${ossl[@]}" ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
        "${ossl[@]}" req -x509 -new -key ca.key -sha256 -days 365 -subj "/CN=budai-controlplane-ca" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
            -out ca.crt 2>/dev/null
        # issue NAME SUBJECT EXTENSIONS
        issue() {
            "${ossl[@]}" ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
            "${ossl[@]}" req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
            printf '%b' "$3" >"$1.ext"
            "${ossl[@]}" x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 365 \
                -extfile "$1.ext" -out "$1.crt" 2>/dev/null
            rm -f "$1.csr" "$1.ext"
        }
        issue apiserver "/CN=kube-apiserver" \
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\n"
        issue admin "/O=system:masters/CN=budai-admin" \
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
        # Service-account token signing key (RSA: accepted by every consumer of the tokens).
        "${ossl[@]}" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
        "${ossl[@]}" pkey -in sa.key -pubout -out sa.pub 2>/dev/null
        chmod 600 ./*.key
    ) || die "certificate generation with openssl failed"
}

write_kubeconfig() {
    local server=$1
    b64() { base64 -w0 <"$STATE/pki/$1"; }
    local old_umask; old_umask=$(umask); umask 077
    cat >"$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: budai-local
  cluster:
    server: $server
    certificate-authority-data: $(b64 ca.crt)
users:
- name: budai-admin
  user:
    client-certificate-data: $(b64 admin.crt)
    client-key-data: $(b64 admin.key)
contexts:
- name: budai-local
  context:
    cluster: budai-local
    user: budai-admin
    namespace: default
current-context: budai-local
EOF
    umask "$old_umask"
}

all_running() {
    local n
    for n in $(cat "$STATE/components" 2>/dev/null || echo etcd); do
        is_ours "$(pid_of "$n")" || return 1
    done
}

cmd_up() {
    local t0; t0=$(now)
    if [[ -f "$STATE/$MARKER" ]]; then
        if all_running && [[ -f "$STATE/kubeconfig" ]]; then
            log "already running (state: $STATE)"
            cmd_env
            return 0
        fi
        log "stale state in $STATE; cleaning it first"
        cmd_down
    fi
    have_all_binaries || cmd_build
    command -v openssl >/dev/null || die "openssl is required to generate certificates"
    command -v curl >/dev/null || die "curl is required to probe readiness"
    mkdir -p "$STATE"/{pids,logs}
    touch "$STATE/$MARKER"
    echo "$BIN" >"$STATE/bin-dir"
    local controllers=${BUDAI_CP_CONTROLLERS:-$DEFAULT_CONTROLLERS}
    if [[ "$controllers" == none ]]; then echo "etcd kube-apiserver" >"$STATE/components"
    else echo "etcd kube-apiserver kube-controller-manager" >"$STATE/components"; fi

    # On failure, leave nothing running behind.
    trap 'rc=$?; if (( rc != 0 )); then log "up failed; stopping what was started"; BUDAI_CP_KEEP_LOGS=1 cmd_down; fi' EXIT

    if [[ -n "${BUDAI_CP_WATCH_PID:-}" ]]; then
        setsid bash "$SELF" _watchdog "$BUDAI_CP_WATCH_PID" "$STATE/" >/dev/null 2>&1 </dev/null &
        echo $! >"$STATE/pids/watchdog.pid"
    fi

    gen_pki

    local attempt etcd_port peer_port api_port server pid
    for attempt in 1 2 3; do
        read -r etcd_port peer_port api_port < <(free_ports 3)
        start etcd "$BIN/etcd" --name=budai --data-dir="$STATE/etcd" \
            --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
            --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
            --initial-cluster="budai=http://127.0.0.1:$peer_port" \
            --unsafe-no-fsync=true --log-level=warn --quota-backend-bytes=2147483648
        pid=$(pid_of etcd)
        if wait_for etcd 60 "$pid" curl -fsS "http://127.0.0.1:$etcd_port/health"; then break; fi
        kill "$pid" 2>/dev/null || true
        if ! grep -q "address already in use" "$STATE/logs/etcd.log" || (( attempt == 3 )); then die "etcd did not start"; fi
        rm -rf "$STATE/etcd"
    done
    log "etcd ready on 127.0.0.1:$etcd_port after $(fmt_secs $(( $(now) - t0 )))"

    for attempt in 1 2 3; do
        server="https://127.0.0.1:$api_port"
        start kube-apiserver "$BIN/kube-apiserver" \
            --etcd-servers="http://127.0.0.1:$etcd_port" \
            --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
            --cert-dir="$STATE/pki" \
            --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
            --client-ca-file="$STATE/pki/ca.crt" \
            --service-account-issuer="$server" \
            --service-account-key-file="$STATE/pki/sa.pub" \
            --service-account-signing-key-file="$STATE/pki/sa.key" \
            --service-cluster-ip-range=10.0.0.0/24 \
            --authorization-mode=RBAC \
            --disable-admission-plugins=ServiceAccount \
            --endpoint-reconciler-type=none \
            --allow-privileged=true --profiling=false
        pid=$(pid_of kube-apiserver)
        if wait_for kube-apiserver 120 "$pid" curl -fsS --cacert "$STATE/pki/ca.crt" "$server/readyz"; then break; fi
        kill "$pid" 2>/dev/null || true
        if ! grep -q "address already in use" "$STATE/logs/kube-apiserver.log" || (( attempt == 3 )); then
            die "kube-apiserver did not become ready"
        fi
        read -r api_port < <(free_ports 1)
    done
    echo "$server" >"$STATE/server"
    write_kubeconfig "$server"
    local kc=("$BIN/kubectl" --kubeconfig="$STATE/kubeconfig")
    wait_for kube-apiserver 30 "$pid" "${kc[@]}" get namespace default || die "namespace default never appeared"
    log "kube-apiserver ready at $server after $(fmt_secs $(( $(now) - t0 )))"

    if [[ "$controllers" != none ]]; then
        # Trimmed: no Pods run here (no scheduler or kubelet), so only the controllers that act
        # on API objects alone. --secure-port=0: it serves nothing.
        start kube-controller-manager "$BIN/kube-controller-manager" \
            --kubeconfig="$STATE/kubeconfig" \
            --controllers="$controllers" \
            --service-account-private-key-file="$STATE/pki/sa.key" \
            --root-ca-file="$STATE/pki/ca.crt" \
            --leader-elect=false --use-service-account-credentials=false \
            --bind-address=127.0.0.1 --secure-port=0
        pid=$(pid_of kube-controller-manager)
        if [[ ",$controllers," == *,serviceaccount-controller,* ]]; then
            wait_for kube-controller-manager 60 "$pid" "${kc[@]}" -n default get serviceaccount default ||
                die "kube-controller-manager did not create the default ServiceAccount"
        else
            sleep 1
            kill -0 "$pid" 2>/dev/null || { tail -n 20 "$STATE/logs/kube-controller-manager.log" >&2; die "kube-controller-manager exited"; }
        fi
        log "kube-controller-manager running ($controllers)"
    fi
    trap - EXIT
    log "control plane up in $(fmt_secs $(( $(now) - t0 ))); kubeconfig: $STATE/kubeconfig"
    cmd_env
}

stop_pid() {
    local name=$1 pid
    pid=$(pid_of "$name")
    [[ -n "$pid" ]] || return 0
    if is_ours "$pid" && [[ "$pid" != "$$" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do is_ours "$pid" || break; sleep 0.1; done
        if is_ours "$pid"; then
            log "$name ($pid) ignored SIGTERM for 10s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$STATE/pids/$name.pid"
}

cmd_down() {
    if [[ ! -e "$STATE" ]]; then log "nothing to stop ($STATE does not exist)"; return 0; fi
    [[ -f "$STATE/$MARKER" ]] || die "$STATE is not a control-plane state dir; refusing to touch it"
    local n
    # The watchdog first (unless it is the one calling), then the clients of etcd, then etcd.
    for n in watchdog kube-controller-manager kube-apiserver etcd; do stop_pid "$n"; done
    if [[ "${BUDAI_CP_KEEP_LOGS:-}" == 1 ]]; then
        find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs ! -name "$MARKER" -exec rm -rf {} +
        log "stopped; logs kept in $STATE/logs"
    else
        rm -rf "$STATE"
        log "stopped and removed $STATE"
    fi
}

# The binaries of the running control plane if there is one, else those of versions.env.
running_bin() { if [[ -f "$STATE/bin-dir" ]]; then cat "$STATE/bin-dir"; else echo "$BIN"; fi; }

cmd_env() {
    printf 'export KUBECONFIG=%q\n' "$STATE/kubeconfig"
    # shellcheck disable=SC2016 # $PATH is for the shell that evals this
    printf 'export PATH=%q:"$PATH"\n' "$(running_bin)"
}

cmd_status() {
    if [[ ! -f "$STATE/$MARKER" ]]; then echo "not up (no state in $STATE)"; return 3; fi
    local n pid rc=0
    for n in $(cat "$STATE/components" 2>/dev/null) watchdog; do
        pid=$(pid_of "$n")
        [[ "$n" == watchdog && -z "$pid" ]] && continue
        if is_ours "$pid"; then
            printf '%-24s running  pid %-8s rss %s\n' "$n" "$pid" "$(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
        else
            printf '%-24s stopped\n' "$n"; rc=1
        fi
    done
    echo "server:     $(cat "$STATE/server" 2>/dev/null || echo '?')"
    echo "kubeconfig: $STATE/kubeconfig"
    echo "binaries:   $(running_bin)"
    return $rc
}

cmd_watchdog() {
    local watched=$1
    STATE=${2%/}
    while kill -0 "$watched" 2>/dev/null; do sleep 2; done
    [[ -f "$STATE/$MARKER" ]] && cmd_down >/dev/null 2>&1 || true
}

case "${1:-}" in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    bin-dir) echo "$BIN" ;;
    regen) cmd_regen ;;
    _watchdog) shift; cmd_watchdog "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A real Kubernetes API server for arcplan's cluster conformance suite, built from Debian
# bookworm's own `kubernetes` source package (v1.20.2, Go 1.19, etcd 3.4 from Debian).
#
#   scripts/kube-apiserver.sh build       install the Debian packages, build kube-apiserver and
#                                         kube-controller-manager once into the cache (reused)
#   scripts/kube-apiserver.sh start DIR   start etcd, kube-apiserver and kube-controller-manager
#                                         (namespace controller only) on 127.0.0.1; write
#                                         DIR/kubeconfig (contexts `admin` and `norights`), DIR/pids
#   scripts/kube-apiserver.sh stop DIR    stop exactly the processes listed in DIR/pids
#   scripts/kube-apiserver.sh status DIR  say whether they run
#
# Environment: ARCPLAN_KUBE_CACHE (default ~/.cache/arcplan-kube) holds the source and binaries.
# `build` needs root (or sudo) for apt-get; everything else runs as any user. Nothing listens on
# an address other than 127.0.0.1, and every wait is bounded.
set -euo pipefail

KUBE_DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
KUBE_VERSION="v1.20.2"
GO_ROOT="/usr/lib/go-1.19"
PACKAGES=(dpkg-dev golang-1.19-go etcd-server make rsync openssl curl ca-certificates
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)
# v1.20.2 vendors reflect2 1.0.1 and json-iterator 1.1.10, which crash (nil pointer in
# reflect2.Type2, on the first JSON request body) when built with Go >= 1.18. Debian's packaged
# reflect2 1.0.2 and json-iterator 1.1.12 replace them in vendor/ (what upstream did later).
OVERLAYS=(github.com/modern-go/reflect2 github.com/json-iterator/go)
# Bumped whenever the recipe changes, so that binaries built by an older recipe are rebuilt.
RECIPE="v1.20.2+reflect2-1.0.2+json-iterator-1.1.12"
CACHE="${ARCPLAN_KUBE_CACHE:-${HOME:-/root}/.cache/arcplan-kube}"
BIN="$CACHE/bin"
BINARIES=(kube-apiserver kube-controller-manager)

say() { printf '[kube-apiserver.sh] %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "installing Debian packages needs root (or sudo): run \`$0 build\` as root once"
  fi
}

# ---------------------------------------------------------------------------------------------
# build

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

have_source_entry() {
  apt-cache showsrc kubernetes 2>/dev/null | grep -qx "Version: $KUBE_DEB_VERSION"
}

# Adds deb-src entries mirroring the machine's own deb entries (deb822 or one-line format).
add_source_entry() {
  local deb822=/etc/apt/sources.list.d/debian.sources
  if [ -f "$deb822" ] && grep -q '^Types:.*\bdeb\b' "$deb822"; then
    sed -e 's/^Types:.*$/Types: deb-src/' "$deb822" |
      as_root tee /etc/apt/sources.list.d/arcplan-deb-src.sources >/dev/null
  elif [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
    sed -n -e 's/^deb /deb-src /p' /etc/apt/sources.list |
      as_root tee /etc/apt/sources.list.d/arcplan-deb-src.list >/dev/null
  else
    printf '%s\n' \
      'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm bookworm-updates' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' '' \
      'Types: deb-src' 'URIs: http://deb.debian.org/debian-security' 'Suites: bookworm-security' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      as_root tee /etc/apt/sources.list.d/arcplan-deb-src.sources >/dev/null
  fi
}

binaries_ok() {
  local b
  [ "$(cat "$BIN/.recipe" 2>/dev/null)" = "$RECIPE" ] || return 1
  for b in "${BINARIES[@]}"; do
    [ -x "$BIN/$b" ] || return 1
    "$BIN/$b" --version 2>/dev/null | grep -q "Kubernetes $KUBE_VERSION\$" || return 1
  done
}

cmd_build() {
  local t0 need src
  t0=$(date +%s)
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock -w 1800 9 || die "another build holds $CACHE/.lock for over 30 minutes"

  mapfile -t need < <(missing_packages)
  if [ "${#need[@]}" -gt 0 ] || ! have_source_entry; then
    if ! have_source_entry; then
      say "adding a deb-src entry for bookworm (the kubernetes source package)"
      add_source_entry
    fi
    say "apt-get update"
    as_root apt-get update -qq
    if [ "${#need[@]}" -gt 0 ]; then
      say "installing ${need[*]}"
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
    fi
    have_source_entry || die "apt has no source package kubernetes $KUBE_DEB_VERSION (check the deb-src entries)"
  fi
  [ -x "$GO_ROOT/bin/go" ] || die "$GO_ROOT/bin/go is missing after installing golang-1.19-go"
  command -v etcd >/dev/null 2>&1 || die "etcd is missing after installing etcd-server"

  if binaries_ok; then
    say "reusing $BIN ($(("$(date +%s)" - t0)) s): $("$BIN/kube-apiserver" --version)"
    return 0
  fi

  src="$CACHE/src/kubernetes-$KUBE_VERSION"
  if [ ! -f "$src/.arcplan-extracted" ]; then
    say "fetching the source package kubernetes $KUBE_DEB_VERSION"
    rm -rf "$CACHE/src"
    mkdir -p "$CACHE/src"
    (cd "$CACHE/src" && apt-get source --download-only -qq "kubernetes=$KUBE_DEB_VERSION" >/dev/null 2>&1) ||
      die "apt-get source kubernetes=$KUBE_DEB_VERSION failed"
    (cd "$CACHE/src" && dpkg-source -x --no-check "kubernetes_$KUBE_DEB_VERSION.dsc" "kubernetes-$KUBE_VERSION" >/dev/null) ||
      die "dpkg-source could not unpack the kubernetes source package"
    local o
    for o in "${OVERLAYS[@]}"; do
      [ -d "/usr/share/gocode/src/$o" ] || die "/usr/share/gocode/src/$o is missing (Debian's Go source package)"
      rsync -a --delete --exclude '*_test.go' --exclude '*_tests/' --exclude 'go.mod' --exclude 'go.sum' \
        "/usr/share/gocode/src/$o/" "$src/vendor/$o/"
    done
    touch "$src/.arcplan-extracted"
  fi

  say "building kube-apiserver and kube-controller-manager $KUBE_VERSION with Go 1.19 (GOPATH mode, vendor/, tag providerless); a few minutes, once"
  # The upstream Makefile sets up its own GOPATH under _output/ and GO111MODULE=off; the
  # version comes from the `git archive` markers of the release tarball (v1.20.2).
  if ! (cd "$src" && env -u GOPATH -u GOBIN -u GOROOT -u GOTOOLCHAIN \
    PATH="$GO_ROOT/bin:$PATH" GO111MODULE=off GOFLAGS=-tags=providerless CGO_ENABLED=0 \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$CACHE/build.log" 2>&1); then
    tail -n 30 "$CACHE/build.log" >&2
    die "the build failed (full log: $CACHE/build.log)"
  fi
  mkdir -p "$BIN"
  local b
  for b in "${BINARIES[@]}"; do
    install -m 0755 "$src/_output/local/go/bin/$b" "$BIN/$b.tmp"
    mv -f "$BIN/$b.tmp" "$BIN/$b"
  done
  echo "$RECIPE" >"$BIN/.recipe"
  binaries_ok || die "the built binaries do not report $KUBE_VERSION"
  # The tree and Go's build cache are only needed to build; the binaries stay.
  rm -rf "$CACHE/src"
  say "built in $(("$(date +%s)" - t0)) s: $("$BIN/kube-apiserver" --version)"
}

# ---------------------------------------------------------------------------------------------
# start / stop

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local i p
  for i in $(seq 1 50); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if port_free "$p" && ! grep -qx "$p" "$DIR/.ports" 2>/dev/null; then
      echo "$p" >>"$DIR/.ports"
      echo "$p"
      return 0
    fi
    : "$i"
  done
  die "no free port found on 127.0.0.1"
}

# wait_for WHAT SECONDS PID COMMAND...: runs COMMAND until it succeeds, PID dies, or time is up.
wait_for() {
  local what=$1 secs=$2 pid=$3 deadline
  shift 3
  deadline=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(date +%s)" -lt "$deadline" ] || {
      say "$what not ready after ${secs}s"
      return 1
    }
    sleep 0.5
  done
}

make_pki() {
  local pki=$DIR/pki
  mkdir -p "$pki"
  chmod 700 "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=arcplan-conformance-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" >/dev/null 2>&1
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc' \
    'extendedKeyUsage=serverAuth' 'keyUsage=digitalSignature,keyEncipherment' >"$pki/serving.ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" >/dev/null 2>&1
  openssl x509 -req -sha256 -days 30 -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -extfile "$pki/serving.ext" -out "$pki/apiserver.crt" >/dev/null 2>&1
  openssl genrsa -out "$pki/sa.key" 2048 >/dev/null 2>&1
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" >/dev/null 2>&1
  ADMIN_TOKEN=$(openssl rand -hex 24)
  NORIGHTS_TOKEN=$(openssl rand -hex 24)
  # token,user,uid,"groups"
  printf '%s,arcplan-admin,arcplan-admin,"system:masters"\n%s,arcplan-nobody,arcplan-nobody\n' \
    "$ADMIN_TOKEN" "$NORIGHTS_TOKEN" >"$pki/tokens.csv"
  chmod 600 "$pki"/*
}

write_kubeconfig() {
  local ca
  ca=$(base64 -w0 <"$DIR/pki/ca.crt")
  umask 077
  cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: arcplan-conformance
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $ADMIN_TOKEN
- name: norights
  user:
    token: $NORIGHTS_TOKEN
contexts:
- name: admin
  context:
    cluster: arcplan-conformance
    user: admin
- name: norights
  context:
    cluster: arcplan-conformance
    user: norights
current-context: admin
EOF
}

api_get() {
  curl -sf --max-time 5 --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$API_PORT$1"
}

# Starts a process in its own session, logging to DIR/NAME.log, and records it in DIR/pids.
launch() {
  local name=$1
  shift
  setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$name $pid" >>"$DIR/pids"
  LAUNCHED=$pid
}

running_pids() {
  [ -f "$DIR/pids" ] || return 0
  local name pid
  while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"; then
      echo "$name $pid"
    fi
  done <"$DIR/pids"
}

cmd_stop() {
  [ -f "$DIR/pids" ] || {
    say "nothing to stop in $DIR (no pids file)"
    return 0
  }
  local name pid i
  # Stop in reverse start order: the controller manager, the API server, then etcd.
  while read -r name pid; do
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
      : "$i"
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done < <(running_pids | tac)
  rm -f "$DIR/pids" "$DIR/.ports"
}

fail_start() {
  local log
  say "error: $*"
  for log in etcd kube-apiserver kube-controller-manager; do
    if [ -s "$DIR/$log.log" ]; then
      say "last lines of $DIR/$log.log:"
      tail -n 15 "$DIR/$log.log" >&2
    fi
  done
  cmd_stop
  exit 1
}

cmd_start() {
  binaries_ok || die "kube-apiserver $KUBE_VERSION is not built in $BIN: run \`$0 build\` first"
  command -v etcd >/dev/null 2>&1 || die "etcd is not installed: run \`$0 build\` first"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if [ -n "$(running_pids)" ]; then
    die "$DIR already runs a cluster (see $DIR/pids): \`$0 stop $DIR\` first"
  fi
  rm -rf "$DIR/etcd" "$DIR/pki" "$DIR/pids" "$DIR/.ports" "$DIR/kubeconfig"
  make_pki

  local etcd_port peer_port
  etcd_port=$(free_port)
  peer_port=$(free_port)
  API_PORT=$(free_port)
  launch etcd etcd --name arcplan --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "arcplan=http://127.0.0.1:$peer_port" --initial-cluster-state new \
    --log-level warn
  wait_for etcd 30 "$LAUNCHED" curl -sf --max-time 2 "http://127.0.0.1:$etcd_port/health" ||
    fail_start "etcd did not start"

  launch kube-apiserver "$BIN/kube-apiserver" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --insecure-port=0 \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --cert-dir="$DIR/pki" --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
    --client-ca-file="$DIR/pki/ca.crt" --token-auth-file="$DIR/pki/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/24 --endpoint-reconciler-type=none \
    --profiling=false --v=1
  local api_pid=$LAUNCHED
  wait_for kube-apiserver 90 "$api_pid" api_get /readyz || fail_start "kube-apiserver did not become ready"
  # The bootstrap controller creates the system namespaces just after /readyz.
  wait_for "namespace kube-system" 30 "$api_pid" api_get /api/v1/namespaces/kube-system ||
    fail_start "kube-apiserver did not create its system namespaces"
  wait_for "namespace default" 30 "$api_pid" api_get /api/v1/namespaces/default ||
    fail_start "kube-apiserver did not create its system namespaces"
  write_kubeconfig

  # Only the namespace controller: namespace deletion finishes as in a real cluster, while no
  # deployment controller competes with the suite's stand-in (no kubelet could run pods anyway).
  umask 077
  sed -e 's/^current-context: .*/current-context: admin/' "$DIR/kubeconfig" >"$DIR/controller-manager.kubeconfig"
  launch kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$DIR/controller-manager.kubeconfig" --controllers=namespace --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --port=0 --v=1
  sleep 1
  kill -0 "$LAUNCHED" 2>/dev/null || fail_start "kube-controller-manager exited"
  rm -f "$DIR/.ports"
  say "ready: https://127.0.0.1:$API_PORT ($KUBE_VERSION); kubeconfig $DIR/kubeconfig (contexts admin, norights)"
}

cmd_status() {
  local r
  r=$(running_pids)
  if [ -n "$r" ]; then
    printf '%s\n' "$r"
  else
    say "nothing runs from $DIR"
    return 1
  fi
}

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
build) cmd_build ;;
start | stop | status)
  [ $# -eq 2 ] || usage
  DIR=$2
  case "$1" in
  start) cmd_start ;;
  stop)
    [ -d "$DIR" ] || die "$DIR does not exist"
    DIR=$(cd "$DIR" && pwd)
    cmd_stop
    ;;
  status)
    DIR=$(cd "$DIR" && pwd)
    cmd_status
    ;;
  esac
  ;;
*) usage ;;
esac

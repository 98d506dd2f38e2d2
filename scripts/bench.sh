#!/usr/bin/env bash
# make bench: the benchmarks of bench/bench.py against the release-mode native stack.
#
#   1. wrk, pgbench, curl and a Python with matplotlib (a venv in .stack/bench/venv);
#   2. `scripts/stack.sh up` (builds and starts whatever is not running) and the
#      micro-benchmarks binary;
#   3. recording restarted with a file limit that admits the 256 MiB upload, and put back
#      as it was at the end;
#   4. a second nginx from the same template (deploy/nginx/gateway.conf.template) on
#      BENCH_GATEWAY_PORT, in front of the same service instances, with two differences:
#      the login/signup rate limit is lifted (the login scenario measures bcrypt, not the
#      limiter), it proxies GET /health to vote (the gateway-overhead probe), answers
#      GET /bench-floor itself (nginx's floor) and serves this folder as /bench-static/
#      (the downloads' limit). The stack's own gateway on 8080 is left as it is.
#
# Env: BENCH_GATEWAY_PORT (8090), BENCH_DURATION (8 s per scenario), BENCH_CONNECTIONS (16),
# BENCH_THREADS (2), BENCH_USERS (360), BENCH_POLLS (100), BENCH_POSTS (60),
# BENCH_UPLOAD_MIB (256), and stack.sh's own (STACK_PG_PORT, SCALE_VOTE, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=lib/gateway.sh
source "$ROOT/scripts/lib/gateway.sh"

SWIFT="${SWIFT:-swift}"
# The stack's folder (scripts/stack.sh: STACK_DIR, default .stack).
STACK_STATE_DIR="${STACK_DIR:-$ROOT/.stack}"
BENCH_DIR="$STACK_STATE_DIR/bench"
BENCH_GATEWAY_PORT="${BENCH_GATEWAY_PORT:-8090}"
BENCH_UPLOAD_MIB="${BENCH_UPLOAD_MIB:-256}"
VENV="$BENCH_DIR/venv"

log() { echo "bench: $*"; }
stack() { bash "$ROOT/scripts/stack.sh" "$@"; }
die() { echo "bench: error: $*" >&2 && exit 1; }

# --------------------------------------------------------------------------- tools

# COMMAND, installed from Debian's PACKAGE when missing (lib/install.sh).
ensure_debian_package() {
    install_via_apt "$1" "$2" >/dev/null || die "$1 is needed (see the line above)"
}

ensure_tools() {
    ensure_debian_package wrk wrk
    ensure_debian_package curl curl
    command -v pgbench >/dev/null 2>&1 || ensure_debian_package pgbench postgresql-contrib
    ensure_debian_package python3 python3
    mkdir -p "$BENCH_DIR"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
        log "creating $VENV with matplotlib"
        python3 -m venv --system-site-packages "$VENV"
        "$VENV/bin/pip" install -q matplotlib || die "could not install matplotlib (pip)"
    fi
}

# --------------------------------------------------------------------------- the stack

instance_pid() {
    local file="$STACK_STATE_DIR/run/$1.pid"
    [[ -f "$file" ]] && cat "$file"
}

instance_env() { # instance_env INSTANCE VAR: a variable of a running instance's environment
    tr '\0' '\n' <"/proc/$(instance_pid "$1")/environ" | sed -n "s/^$2=//p"
}

ORIGINAL_MAX_BYTES=""
RECORDING_RESTARTED=0
restore() {
    local status=$?
    gateway_stop "$BENCH_DIR/nginx" || true
    if ((RECORDING_RESTARTED)); then
        log "putting recording back as it was (RECORDING_MAX_BYTES=${ORIGINAL_MAX_BYTES:-default})"
        stack restart recording "RECORDING_MAX_BYTES=$ORIGINAL_MAX_BYTES" >/dev/null || true
    fi
    exit "$status"
}

main() {
    ensure_tools
    log "bringing the stack up (release build; already running services are kept)"
    stack up >"$BENCH_DIR/stack-up.log" 2>&1 ||
        { tail -n 30 "$BENCH_DIR/stack-up.log" >&2 && die "the stack did not come up (see .stack/bench/stack-up.log)"; }
    (cd "$ROOT" && "$SWIFT" build -c release --product micro-benchmarks >"$BENCH_DIR/build.log" 2>&1) ||
        { tail -n 30 "$BENCH_DIR/build.log" >&2 && die "the micro-benchmarks did not build"; }
    BENCH_MICRO_BINARY="$(cd "$ROOT" && "$SWIFT" build -c release --show-bin-path)/micro-benchmarks"
    export BENCH_MICRO_BINARY

    trap restore EXIT
    local needed=$(((BENCH_UPLOAD_MIB + 16) * 1048576))
    ORIGINAL_MAX_BYTES="$(instance_env recording RECORDING_MAX_BYTES)"
    if ((${ORIGINAL_MAX_BYTES:-104857600} < needed)); then
        log "restarting recording with RECORDING_MAX_BYTES=$needed for the ${BENCH_UPLOAD_MIB} MiB upload"
        RECORDING_RESTARTED=1
        stack restart recording "RECORDING_MAX_BYTES=$needed" >/dev/null
    fi
    BENCH_STORAGE_BACKEND="$(instance_env recording STORAGE_BACKEND)"
    BENCH_S3_ENDPOINT="$(instance_env recording S3_ENDPOINT)"
    export BENCH_STORAGE_BACKEND BENCH_S3_ENDPOINT

    local svc
    local -a upstreams=()
    for svc in $SERVICES; do upstreams+=("$svc=$(stack addresses "$svc")"); done
    # The stack's store, for the downloads the services hand over; and the benchmark's own
    # folder as static files (/bench-static/), the limit of those downloads.
    local store_files="" object_store=""
    if [[ "$BENCH_STORAGE_BACKEND" == filesystem ]]; then
        store_files="$(dirname "$(instance_env recording STORAGE_PATH)")"
    elif [[ "$BENCH_S3_ENDPOINT" =~ ^http://([^/]+)/?$ ]]; then
        object_store="${BASH_REMATCH[1]}"
    fi
    GATEWAY_AUTH_RATE=100000r/s GATEWAY_AUTH_BURST=100000 RECORDING_MAX_BYTES="$needed" \
        GATEWAY_STORE_FILES="$store_files" GATEWAY_OBJECT_STORE="$object_store" \
        GATEWAY_EXTRA_LOCATIONS="location = /health { proxy_pass http://vote_service; } location = /bench-floor { return 200 ok; } location /bench-static/ { alias $BENCH_DIR/; sendfile on; tcp_nopush on; }" \
        gateway_render "$BENCH_DIR/nginx" "127.0.0.1:$BENCH_GATEWAY_PORT" "${upstreams[@]}"
    gateway_start "$BENCH_DIR/nginx" || die "the benchmark gateway did not start (see .stack/bench/nginx/logs/error.log)"
    log "benchmark gateway on http://127.0.0.1:$BENCH_GATEWAY_PORT"

    # The first instance of each, for the measurements that bypass the gateway.
    BENCH_VOTE_URL="http://$(stack addresses vote | cut -d' ' -f1)" \
        BENCH_GATEWAY_URL="http://127.0.0.1:$BENCH_GATEWAY_PORT" "$VENV/bin/python" "$ROOT/bench/bench.py"
}

main "$@"

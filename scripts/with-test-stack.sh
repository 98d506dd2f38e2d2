#!/usr/bin/env bash
# with-test-stack.sh CMD...: the whole system for the end-to-end tests, started from the
# debug binaries that `swift build` produced, on the throwaway PostgreSQL of
# with-test-postgres.sh (TEST_DATABASE_URL), behind the real nginx gateway on a free
# port. Exports E2E_GATEWAY_URL, E2E_LOG_DIR, E2E_BIN_DIR, E2E_<SERVICE>_URL and
# E2E_<SERVICE>_ENV (a file with that service's environment), runs CMD, and stops
# everything afterwards, returning CMD's exit code.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/gateway.sh
source "$ROOT/scripts/lib/gateway.sh"

: "${TEST_DATABASE_URL:?run inside scripts/with-test-postgres.sh}"
[[ $# -gt 0 ]] || { echo "usage: $0 CMD..." >&2; exit 2; }

SERVICES="auth vote recording feed"
E2E_DIR="$(mktemp -d "${TMPDIR:-/tmp}/e2e-stack.XXXXXX")"
BIN_DIR="$(cd "$ROOT" && swift build --show-bin-path)"
mkdir -p "$E2E_DIR/logs" "$E2E_DIR/storage"
declare -A PIDS=() PORTS=()

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cleanup() {
    local status=$?
    gateway_stop "$E2E_DIR/gateway" || true
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ $status -ne 0 && -n "${E2E_KEEP_LOGS:-}" ]]; then
        echo "with-test-stack: logs kept in $E2E_DIR/logs" >&2
    else
        rm -rf "$E2E_DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

database_url() {
    # The throwaway cluster's superuser on a database of the service's own.
    local base="${TEST_DATABASE_URL%/*}"
    echo "$base/e2e_$1"
}

available=""
for svc in $SERVICES; do
    [[ -x "$BIN_DIR/$svc-service" ]] && available+="$svc "
    PORTS[$svc]="$(free_port)"
done
[[ -n "$available" ]] || { echo "with-test-stack: no service binaries in $BIN_DIR (run swift build)" >&2; exit 1; }

targets=""
for svc in $available; do
    [[ "$svc" == auth ]] && continue
    targets+="${targets:+,}$svc=http://127.0.0.1:${PORTS[$svc]}"
done

for svc in $available; do
    psql -X -q "$TEST_DATABASE_URL" -c "CREATE DATABASE e2e_$svc" >/dev/null
    env_file="$E2E_DIR/$svc.env"
    {
        echo "APP_ENV=development"
        echo "HTTP_HOST=127.0.0.1"
        echo "HTTP_PORT=${PORTS[$svc]}"
        echo "LOG_LEVEL=info"
        echo "DATABASE_URL=$(database_url "$svc")"
        echo "JWT_SECRET=e2e-jwt-secret-0123456789abcdef0123456789abcdef"
        echo "SERVICE_TOKEN_SECRET=e2e-service-secret-0123456789abcdef0123456789"
        echo "BCRYPT_COST=4"
        echo "OUTBOX_TARGETS=$targets"
        echo "AUTH_URL=http://127.0.0.1:${PORTS[auth]}"
        echo "STORAGE_BACKEND=filesystem"
        echo "STORAGE_PATH=$E2E_DIR/storage/$svc"
        echo "RECORDING_TRASH_RETENTION_SECONDS=0"
        echo "AUTHOR_CACHE_TTL_SECONDS=1"
    } >"$env_file"
    env $(cat "$env_file") "$BIN_DIR/$svc-service" >>"$E2E_DIR/logs/$svc.log" 2>&1 </dev/null &
    PIDS[$svc]=$!
    export "E2E_$(echo "$svc" | tr '[:lower:]' '[:upper:]')_URL=http://127.0.0.1:${PORTS[$svc]}"
    export "E2E_$(echo "$svc" | tr '[:lower:]' '[:upper:]')_ENV=$env_file"
done

for svc in $available; do
    for ((i = 0; ; i++)); do
        curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${PORTS[$svc]}/ready" 2>/dev/null && break
        if ! kill -0 "${PIDS[$svc]}" 2>/dev/null || ((i > 300)); then
            tail -n 40 "$E2E_DIR/logs/$svc.log" >&2
            echo "with-test-stack: $svc did not become ready" >&2
            exit 1
        fi
        sleep 0.1
    done
done

gateway_port="$(free_port)"
# Generous for the suite (all from 127.0.0.1); the rate-limit test uses another source address.
export GATEWAY_AUTH_RATE="${GATEWAY_AUTH_RATE:-600r/m}" GATEWAY_AUTH_BURST="${GATEWAY_AUTH_BURST:-100}"
gateway_render "$E2E_DIR/gateway" "127.0.0.1:$gateway_port" \
    "127.0.0.1:${PORTS[auth]}" "127.0.0.1:${PORTS[vote]}" "127.0.0.1:${PORTS[recording]}" "127.0.0.1:${PORTS[feed]}"
gateway_start "$E2E_DIR/gateway"
ln -s ../gateway/logs/access.log "$E2E_DIR/logs/gateway.log"

export E2E_GATEWAY_URL="http://127.0.0.1:$gateway_port"
export E2E_LOG_DIR="$E2E_DIR/logs"
export E2E_BIN_DIR="$BIN_DIR"
echo "with-test-stack: gateway $E2E_GATEWAY_URL, services: $available"

"$@" &
wait $!

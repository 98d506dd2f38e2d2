#!/usr/bin/env bash
# with-test-stack.sh CMD...: the whole system for the end-to-end tests, started from the
# debug binaries that `swift build` produced, on the throwaway PostgreSQL of
# with-test-postgres.sh (TEST_DATABASE_URL), behind the real nginx gateway, every port
# picked now outside the ephemeral range (lib/ports.sh). Services, their variables and
# which talks to which come from the table in lib/services.sh. Exports
#   E2E_GATEWAY_URL, E2E_LOG_DIR (<instance>.log: auth.log, vote.log, vote-2.log, ...,
#   gateway.log), E2E_BIN_DIR, and per service E2E_<SERVICE>_URL (its first instance),
#   E2E_<SERVICE>_URLS (all its instances, space-separated) and E2E_<SERVICE>_ENV (a file
#   with the first instance's environment, VAR=VALUE lines), and the ports of the two
#   OpenID providers that auth is configured with and the tests start: E2E_OIDC_PORT (the
#   end-to-end tests', provider "e2e") and E2E_WEB_OIDC_PORT (the browser tests', provider
#   "web", scripts/lib/oidc_provider.py started by tests/web/run.sh),
# runs CMD, and stops everything afterwards, returning CMD's exit code.
#
# Env: E2E_SCALE (default 2) instances of every service, the gateway balancing across
# them; E2E_KEEP_LOGS=1 keeps the logs of a failed run; E2E_BIN_DIR (default: the folder
# of `swift build --show-bin-path`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=lib/gateway.sh
source "$ROOT/scripts/lib/gateway.sh"
# shellcheck source-path=SCRIPTDIR source=lib/ports.sh
source "$ROOT/scripts/lib/ports.sh"
# shellcheck source-path=SCRIPTDIR source=lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"
# shellcheck source-path=SCRIPTDIR source=lib/child.sh
source "$ROOT/scripts/lib/child.sh"

: "${TEST_DATABASE_URL:?run inside scripts/with-test-postgres.sh}"
[[ $# -gt 0 ]] || { echo "usage: $0 CMD..." >&2; exit 2; }

die() {
    echo "with-test-stack: $*" >&2
    exit 1
}

E2E_SCALE="${E2E_SCALE:-2}"
[[ "$E2E_SCALE" =~ ^[1-9][0-9]*$ ]] || die "E2E_SCALE must be a positive number, not '$E2E_SCALE'"
# Read by lib/services.sh; not exported, so CMD (and a stack it starts) does not inherit them.
for svc in $SERVICES; do printf -v "SCALE_$(upper "$svc")" '%s' "$E2E_SCALE"; done

BIN_DIR="${E2E_BIN_DIR:-$(cd "$ROOT" && swift build --show-bin-path)}"
PSQL="$(pg_find_psql)"
E2E_DIR="$(mktemp -d "${TMPDIR:-/tmp}/e2e-stack.XXXXXX")"
mkdir -p "$E2E_DIR/logs" "$E2E_DIR/storage"
declare -A PIDS=()

# shellcheck disable=SC2317,SC2329 # invoked via trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
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
# INT/TERM reach CMD too (lib/child.sh), then cleanup runs.
child_forward_signals

# Every service of the table must be built: a missing one would leave its routes and
# its tests untested while the run still passes.
missing=""
for svc in $SERVICES; do
    [[ -x "$BIN_DIR/$svc-service" ]] || missing+=" $svc-service"
done
[[ -z "$missing" ]] || die "missing binaries in $BIN_DIR:$missing (run swift build)"

# All ports at once (distinct), outside the ephemeral range: one per instance, the
# gateway's, one for the OpenID provider the end-to-end tests start (E2E_OIDC_PORT) and one
# for the browser tests' (E2E_WEB_OIDC_PORT).
instances="$(all_instances)"
ports="$(ports_pick $(($(wc -w <<<"$instances") + 3)))" || die "no free ports"
mapfile -t picked <<<"$ports"
n=0
for inst in $instances; do
    INSTANCE_PORTS[$inst]="${picked[$n]}"
    n=$((n + 1))
done
gateway_port="${picked[$n]}"
export E2E_OIDC_PORT="${picked[$((n + 1))]}"
export E2E_WEB_OIDC_PORT="${picked[$((n + 2))]}"

# The runner's part of every instance's environment (lib/services.sh adds the rest).
# shellcheck disable=SC2317,SC2329 # called by service_environment
common_env() {
    local inst="$1" svc
    svc="$(instance_service "$inst")"
    echo "APP_ENV=development"
    echo "HTTP_HOST=127.0.0.1"
    echo "HTTP_PORT=$(instance_port "$inst")"
    echo "LOG_LEVEL=info"
    # The throwaway cluster's superuser on a database of the service's own.
    echo "DATABASE_URL=${TEST_DATABASE_URL%/*}/e2e_$svc"
    echo "JWT_SECRET=e2e-jwt-secret-0123456789abcdef0123456789abcdef"
    echo "SERVICE_TOKEN_SECRET=e2e-service-secret-0123456789abcdef0123456789"
    echo "CORS_ALLOWED_ORIGINS=*"
}

# shellcheck disable=SC2317,SC2329 # called by service_environment
# Recording keeps its bytes in the run's SeaweedFS (with-test-seaweedfs.sh) when there is
# one, feed in a folder: the gateway's two store locations (/_store/s3/, /_store/files/) are
# both on the way of the suite's downloads.
storage_env() {
    if [[ "$1" == recording && -n "${TEST_S3_ENDPOINT:-}" ]]; then
        echo "STORAGE_BACKEND=s3"
        echo "S3_ENDPOINT=$TEST_S3_ENDPOINT"
        echo "S3_REGION=${TEST_S3_REGION:-us-east-1}"
        echo "S3_BUCKET=e2e-recording"
        echo "S3_ACCESS_KEY_ID=$TEST_S3_ACCESS_KEY"
        echo "S3_SECRET_ACCESS_KEY=$TEST_S3_SECRET_KEY"
        echo "STORAGE_GATEWAY_PATH=/_store/s3/"
        return
    fi
    echo "STORAGE_BACKEND=filesystem"
    echo "STORAGE_PATH=$E2E_DIR/storage/$1"
    echo "STORAGE_GATEWAY_PATH=/_store/files/$1/"
}

# An instance's environment with the suite's values of the table's variables and knobs,
# whatever the caller's environment holds (in a subshell, so CMD's is left as it is):
# fast bcrypt, an immediate purge, short-lived author names, and patient name lookups (the
# whole suite loads two cores; production's 1 s deadline would make names flake to null).
e2e_environment() (
    for svc in $SERVICES; do
        for name in ${SERVICE_KNOBS[$svc]}; do
            for var in $(knob_variables "$name"); do unset "$var"; done
        done
    done
    # shellcheck disable=SC2034 # read by service_environment
    BCRYPT_COST=4 RECORDING_TRASH_RETENTION_SECONDS=0 USER_DELETION_REDELIVERY_SECONDS=3 AUTH_TIMEOUT_MS=10000
    # Mail goes to the run's SMTP server (scripts/with-test-smtp.sh), retried fast.
    if [[ -n "${TEST_SMTP_URL:-}" ]]; then
        # shellcheck disable=SC2034 # read by service_environment
        SMTP_URL="$TEST_SMTP_URL" SMTP_CA_FILE="$TEST_SMTP_CA_FILE" MAIL_RETRY_BASE_SECONDS=0.1 \
            MAIL_RETRY_MAX_SECONDS=1 MAIL_POLL_INTERVAL_SECONDS=0.2
    fi
    # Social sign-in against the OpenID providers the end-to-end tests (e2e) and the browser
    # tests (web: its discovery names the authorization endpoint the web app sends people to)
    # run on these ports.
    # shellcheck disable=SC2034 # read by service_environment
    OIDC_PROVIDERS=e2e,web OIDC_E2E_ISSUER="http://127.0.0.1:$E2E_OIDC_PORT" OIDC_E2E_CLIENT_IDS=test-app-client \
        OIDC_WEB_ISSUER="http://127.0.0.1:$E2E_WEB_OIDC_PORT" OIDC_WEB_CLIENT_IDS=web-app-client \
        OIDC_KEYS_REFETCH_SECONDS=0.1
    service_environment "$1"
)

for svc in $SERVICES; do
    "$PSQL" -X -q "$TEST_DATABASE_URL" -c "CREATE DATABASE e2e_$svc" >/dev/null
    urls=""
    for inst in $(instances_of "$svc"); do
        env_file="$E2E_DIR/$inst.env"
        e2e_environment "$inst" >"$env_file" || die "no environment for $inst"
        mapfile -t env_vars <"$env_file"
        env "${env_vars[@]}" "$BIN_DIR/$svc-service" >>"$E2E_DIR/logs/$inst.log" 2>&1 </dev/null &
        PIDS[$inst]=$!
        urls+="${urls:+ }$(instance_url "$inst")"
    done
    SVC="$(upper "$svc")"
    export "E2E_${SVC}_URL=$(instance_url "$svc")"
    export "E2E_${SVC}_URLS=$urls"
    export "E2E_${SVC}_ENV=$E2E_DIR/$svc.env"
done

for inst in $instances; do
    for ((i = 0; ; i++)); do
        curl -fsS -o /dev/null --max-time 2 "$(instance_url "$inst")/ready" 2>/dev/null && break
        if ! kill -0 "${PIDS[$inst]}" 2>/dev/null || ((i > 300)); then
            tail -n 40 "$E2E_DIR/logs/$inst.log" >&2
            die "$inst did not become ready"
        fi
        sleep 0.1
    done
done

# Generous for the suite (all from 127.0.0.1); the rate-limit test uses another source address.
export GATEWAY_AUTH_RATE="${GATEWAY_AUTH_RATE:-600r/m}" GATEWAY_AUTH_BURST="${GATEWAY_AUTH_BURST:-100}"
# Refresh and profile changes: raised for the journeys and the fuzz pass from 127.0.0.1, but
# low enough that their limit tests (own addresses, requests back to back) reach them on a
# loaded machine.
export GATEWAY_REFRESH_RATE="${GATEWAY_REFRESH_RATE:-120r/m}" GATEWAY_REFRESH_BURST="${GATEWAY_REFRESH_BURST:-30}"
export GATEWAY_PROFILE_RATE="${GATEWAY_PROFILE_RATE:-120r/m}" GATEWAY_PROFILE_BURST="${GATEWAY_PROFILE_BURST:-30}"
# Password forgot/reset keep the production limit (5r/m, burst 10).
export GATEWAY_EVENT_STREAMS="${GATEWAY_EVENT_STREAMS:-50}"
# Short, so that the stalled-request test waits seconds, not a minute; still far above any
# pause of a client that is sending.
export GATEWAY_CLIENT_TIMEOUT="${GATEWAY_CLIENT_TIMEOUT:-5s}"
upstreams=()
for svc in $SERVICES; do upstreams+=("$svc=$(service_addresses "$svc")"); done
# Where the gateway reads the downloads it is handed (storage_env above); exported for the
# gateways the suite renders itself (tests/web/run.sh's second one).
export GATEWAY_STORE_FILES="$E2E_DIR/storage" GATEWAY_OBJECT_STORE="${TEST_S3_ENDPOINT#http://}"
gateway_render "$E2E_DIR/gateway" "127.0.0.1:$gateway_port" "${upstreams[@]}" || die "could not render the gateway"
gateway_start "$E2E_DIR/gateway" || die "the gateway did not start (see $E2E_DIR/gateway/logs/error.log)"
ln -s ../gateway/logs/access.log "$E2E_DIR/logs/gateway.log"

export E2E_GATEWAY_URL="http://127.0.0.1:$gateway_port"
export E2E_LOG_DIR="$E2E_DIR/logs"
export E2E_BIN_DIR="$BIN_DIR"
echo "with-test-stack: gateway $E2E_GATEWAY_URL, instances: $(echo "$instances" | tr '\n' ' ')"

child_run "$@"

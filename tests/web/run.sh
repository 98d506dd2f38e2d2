#!/usr/bin/env bash
# tests/web/run.sh: the web app's tests in a real browser (tests/web/test_web.py): headless
# Chromium from Debian (chromium, chromium-driver) driven by Selenium (PyPI, in a venv), all
# installed when missing (scripts/lib/install.sh). Runs inside the end-to-end stack
# (scripts/with-test-stack.sh; make test runs it from scripts/run-tests.sh), through its
# gateway (E2E_GATEWAY_URL).
#
# One part needs a setting the stack does not have: its recording service purges a deleted
# recording at once (RECORDING_TRASH_RETENTION_SECONDS=0), which leaves the trash nothing
# to restore. So this starts one more recording instance (the stack's binary and
# environment, on the same database and store) with a retention of an hour and links
# that go stale within a second (RECORDING_LINK_TTL_SECONDS=31; the player wants 30 s left,
# so it must fetch fresh ones), and a second gateway from the same template in front of it and of the stack's
# other services; the recordings journey uses that one (WEB_RECORDING_GATEWAY_URL).
#
# The social sign-in journey needs an OpenID provider with a sign-in page: this starts
# scripts/lib/oidc_provider.py on E2E_WEB_OIDC_PORT (client web-app-client), where the stack
# has configured auth's provider "web", with both gateways' roots as its redirect URIs.
#
# Env: WEB_TEST_JOBS (journeys at once, default 2), WEB_TEST_ONLY (names of journeys, comma-
# separated), WEB_TEST_WAIT (seconds a step may take, default 20), CHROMIUM, CHROMEDRIVER,
# SELENIUM_PYTHON (lib/install.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/../../scripts/lib source=../../scripts/lib/gateway.sh
source "$ROOT/scripts/lib/gateway.sh"
# shellcheck source-path=SCRIPTDIR/../../scripts/lib source=../../scripts/lib/ports.sh
source "$ROOT/scripts/lib/ports.sh"

die() {
    echo "test-web: FAILED: $*" >&2
    exit 1
}

: "${E2E_GATEWAY_URL:?run inside scripts/with-test-stack.sh}"
: "${E2E_RECORDING_ENV:?run inside scripts/with-test-stack.sh}"
: "${E2E_WEB_OIDC_PORT:?run inside scripts/with-test-stack.sh}"
PYTHON="$(install_find_selenium)" || die "selenium is needed (see the line above)"
CHROMIUM="$(install_find_chromium)" || die "chromium is needed (see the line above)"
CHROMEDRIVER="$(install_find_chromedriver)" || die "chromedriver is needed (see the line above)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/test-web.XXXXXX")"
RECORDING_PID=""
OIDC_PID=""
# shellcheck disable=SC2317,SC2329 # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    gateway_stop "$WORK/gateway" || true
    local pid
    for pid in "$RECORDING_PID" "$OIDC_PID"; do
        [[ -n "$pid" ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((rc != 0)); then
        echo "test-web: the extra recording instance's last log lines:" >&2
        tail -n 15 "$WORK/recording.log" >&2 2>/dev/null || true
        echo "test-web: the OpenID provider's last log lines:" >&2
        tail -n 15 "$WORK/oidc.log" >&2 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ports="$(ports_pick 2)" || die "no free ports"
read -r RECORDING_PORT GATEWAY_PORT <<<"${ports//$'\n'/ }"

# The recording instance: the stack's first one's environment, another port and the two settings.
mapfile -t env_vars < <(grep -v -e '^HTTP_PORT=' -e '^RECORDING_TRASH_RETENTION_SECONDS=' -e '^RECORDING_LINK_TTL_SECONDS=' "$E2E_RECORDING_ENV")
env "${env_vars[@]}" HTTP_PORT="$RECORDING_PORT" RECORDING_TRASH_RETENTION_SECONDS=3600 RECORDING_LINK_TTL_SECONDS=31 \
    "${E2E_BIN_DIR:?}/recording-service" >"$WORK/recording.log" 2>&1 </dev/null &
RECORDING_PID=$!
for ((i = 0; ; i++)); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$RECORDING_PORT/ready" 2>/dev/null && break
    kill -0 "$RECORDING_PID" 2>/dev/null || die "the extra recording instance exited"
    ((i < 300)) || die "the extra recording instance did not become ready"
    sleep 0.1
done

# Its gateway: the stack's instances for auth, vote and feed, that instance for recording.
addresses() { local urls="$1"; urls="${urls//http:\/\//}"; echo "$urls"; }
gateway_render "$WORK/gateway" "127.0.0.1:$GATEWAY_PORT" \
    "auth=$(addresses "$E2E_AUTH_URLS")" "vote=$(addresses "$E2E_VOTE_URLS")" \
    "feed=$(addresses "$E2E_FEED_URLS")" "recording=127.0.0.1:$RECORDING_PORT" || die "could not render the second gateway"
gateway_start "$WORK/gateway" || die "the second gateway did not start (see $WORK/gateway/logs/error.log)"

export WEB_RECORDING_GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT"

# The OpenID provider of the social sign-in journey (its key made now, in $WORK).
python3 -u "$ROOT/scripts/lib/oidc_provider.py" --port "$E2E_WEB_OIDC_PORT" --client-id web-app-client \
    --key "$WORK/oidc-key.pem" --redirect-uri "$E2E_GATEWAY_URL/" --redirect-uri "$WEB_RECORDING_GATEWAY_URL/" \
    >"$WORK/oidc.log" 2>&1 </dev/null &
OIDC_PID=$!
for ((i = 0; ; i++)); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$E2E_WEB_OIDC_PORT/.well-known/openid-configuration" 2>/dev/null && break
    kill -0 "$OIDC_PID" 2>/dev/null || die "the OpenID provider exited"
    ((i < 300)) || die "the OpenID provider did not become ready"
    sleep 0.1
done
export WEB_OIDC_URL="http://127.0.0.1:$E2E_WEB_OIDC_PORT"
export WEB_RECORDING_GATEWAY_LOG="$WORK/gateway/logs/access.log"
export CHROMIUM CHROMEDRIVER
"$PYTHON" "$ROOT/tests/web/test_web.py"

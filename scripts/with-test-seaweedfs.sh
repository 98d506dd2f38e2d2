#!/usr/bin/env bash
# Run a command against a throwaway SeaweedFS S3 server.
#
#   scripts/with-test-seaweedfs.sh CMD [ARGS...]
#   e.g. scripts/with-test-postgres.sh scripts/with-test-seaweedfs.sh swift test
#
# Starts `weed server -s3` in a fresh temp folder (loopback only, free ports picked now
# outside the ephemeral range, gRPC ports included: lib/ports.sh; a random key pair in its identities file, so badly signed requests are refused),
# waits until it takes writes (at most SEAWEEDFS_START_TIMEOUT seconds, default 60), exports
#   TEST_S3_ENDPOINT=http://127.0.0.1:PORT  TEST_S3_REGION=us-east-1
#   TEST_S3_ACCESS_KEY=...                  TEST_S3_SECRET_KEY=...
# runs CMD, then always stops the server and deletes the folder. Exits with CMD's status.
# Tests make their own buckets, so one server serves a whole `make test`.
#
# Env: WEED (see scripts/lib/seaweedfs.sh), SEAWEEDFS_START_TIMEOUT, TMPDIR.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/seaweedfs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/seaweedfs.sh"
# shellcheck source-path=SCRIPTDIR source=lib/child.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/child.sh"

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

WEED_BIN="$(sw_find_weed)"
TMP_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/test-weed.XXXXXX")"
WEED_PID=""

# shellcheck disable=SC2317,SC2329 # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Throwaway data: no need to wait long for a clean stop.
    sw_stop "$WEED_PID" 2
    rm -rf "$TMP_ROOT"
    exit "$rc"
}
trap cleanup EXIT

child_forward_signals

ACCESS_KEY="test$(openssl rand -hex 8)"
SECRET_KEY="$(openssl rand -hex 20)"
sw_write_identities "$TMP_ROOT/s3.json" "$ACCESS_KEY" "$SECRET_KEY"

read -r MASTER_PORT VOLUME_PORT FILER_PORT S3_PORT < <(sw_pick_ports)
WEED_PID="$(sw_start "$WEED_BIN" "$TMP_ROOT/data" "$TMP_ROOT/s3.json" "$TMP_ROOT/weed.log" \
    "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$S3_PORT")"
if ! sw_wait_ready "$WEED_PID" "$MASTER_PORT" "$FILER_PORT" "$S3_PORT" "${SEAWEEDFS_START_TIMEOUT:-60}"; then
    tail -n 30 "$TMP_ROOT/weed.log" >&2 || true
    sw_die "SeaweedFS did not become ready within ${SEAWEEDFS_START_TIMEOUT:-60}s"
fi

export TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export TEST_S3_REGION="us-east-1"
export TEST_S3_ACCESS_KEY="$ACCESS_KEY"
export TEST_S3_SECRET_KEY="$SECRET_KEY"
echo "with-test-seaweedfs: SeaweedFS $("$WEED_BIN" version 2>/dev/null | awk '{print $3}') S3 on 127.0.0.1:$S3_PORT ($TMP_ROOT)" >&2

child_run "$@"

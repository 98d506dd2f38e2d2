#!/usr/bin/env bash
# run-tests.sh [swift test flags]: inside the test stack, the Swift suites (unit, service,
# end-to-end), then, unless flags narrow the run (FUZZ=1 forces it), the OpenAPI fuzz pass,
# the compose checks (compose.yaml valid; its services as in scripts/lib/services.sh) and
# the test of scripts/stack.sh itself (its own folder and ports: a running `make up` is
# left alone). Every step runs; any failure fails the run.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

swift test --skip-build "$@"
status=$?
if [[ $# -eq 0 || "${FUZZ:-0}" == 1 ]]; then
    bash scripts/fuzz-openapi.sh || status=1
    bash scripts/check-compose.sh || status=1
    bash scripts/check-services-table.sh || status=1
    bash scripts/check-k8s.sh || status=1
    bash tests/web/run.sh || status=1
    bash scripts/test-stack.sh || status=1
fi
exit $status

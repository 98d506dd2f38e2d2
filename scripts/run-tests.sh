#!/usr/bin/env bash
# run-tests.sh [swift test flags]: inside the test stack, the Swift suites (unit, service,
# end-to-end), then the OpenAPI fuzz pass unless flags narrow the run (FUZZ=1 forces it).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

swift test --skip-build "$@"
status=$?
if [[ $# -eq 0 || "${FUZZ:-0}" == 1 ]]; then
    bash scripts/fuzz-openapi.sh || status=1
    bash scripts/check-compose.sh || status=1
fi
exit $status

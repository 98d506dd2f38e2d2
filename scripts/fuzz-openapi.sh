#!/usr/bin/env bash
# fuzz-openapi.sh: schemathesis against each service's OpenAPI document, sent through the
# gateway of a running test stack (scripts/with-test-stack.sh). Fails on any 5xx and any
# response that breaks the document. Operations routes and /internal are not public
# (the gateway answers 404 there), so they are left out. Every service of the table in
# lib/services.sh is fuzzed; one the stack does not run fails the pass.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=lib/install.sh
source "$ROOT/scripts/lib/install.sh"

: "${E2E_GATEWAY_URL:?run inside scripts/with-test-stack.sh}"
# schemathesis' st, installed (pip, in a venv) when missing.
ST="$(install_find_st)" || { echo "fuzz: schemathesis is needed (see the line above)" >&2 && exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

email="fuzz-$RANDOM$RANDOM@example.com"
token="$(curl -fsS -X POST "$E2E_GATEWAY_URL/auth/signup" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"fuzz password\",\"name\":\"Fuzz\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')"

status=0
for svc in $SERVICES; do
    var="E2E_$(upper "$svc")_URL"
    url="${!var:-}"
    if [[ -z "$url" ]]; then
        echo "fuzz: $svc is not running: $var is unset (with-test-stack.sh starts every service of lib/services.sh)" >&2
        status=1
        continue
    fi
    curl -fsS "$url/openapi.yaml" -o "$WORK/$svc.yaml"
    echo "fuzz: $svc"
    # Deleting the account mid-run would turn the rest into 401s; it is covered by the suites.
    "$ST" run "$WORK/$svc.yaml" --url "$E2E_GATEWAY_URL" -H "Authorization: Bearer $token" \
        --checks not_a_server_error,response_schema_conformance,content_type_conformance \
        --exclude-path-regex '^/(internal|health|ready|metrics)' \
        --exclude-operation-id deleteMe \
        --max-examples "${FUZZ_MAX_EXAMPLES:-15}" --generation-deterministic --request-timeout 10 \
        --no-color || status=1
done
exit $status

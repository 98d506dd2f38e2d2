#!/usr/bin/env bash
# check-compose.sh: validates compose.yaml (there is no container engine here to run it)
# with placeholder secrets, and checks it names the same services as the native stack.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v docker-compose >/dev/null 2>&1 || { echo "check-compose: docker-compose is not installed (apt-get install docker-compose)" >&2; exit 1; }
placeholders=(JWT_SECRET SERVICE_TOKEN_SECRET POSTGRES_PASSWORD AUTH_DB_PASSWORD VOTE_DB_PASSWORD
    RECORDING_DB_PASSWORD FEED_DB_PASSWORD S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY)
for name in "${placeholders[@]}"; do export "$name=placeholder-$name"; done
services="$(docker-compose -f "$ROOT/compose.yaml" config --services | sort | tr '\n' ' ')"
echo "check-compose: compose.yaml is valid; services: $services"

# The nginx image leaves an unset ${GATEWAY_*} in the template as it is, which nginx then
# refuses: every variable of the template must be in the gateway's environment.
config="$(docker-compose -f "$ROOT/compose.yaml" config)"
for var in $(grep -o '\${GATEWAY_[A-Z_]*}' "$ROOT/deploy/nginx/gateway.conf.template" | tr -d '${}' | sort -u); do
    grep -Eq "^ +$var:" <<<"$config" || { echo "check-compose: the gateway's environment lacks $var (used in deploy/nginx/gateway.conf.template)" >&2; exit 1; }
done
echo "check-compose: the gateway's environment sets every template variable"

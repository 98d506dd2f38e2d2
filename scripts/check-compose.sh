#!/usr/bin/env bash
# check-compose.sh: validates compose.yaml (there is no container engine here to run it)
# with placeholder secrets, and checks that the gateway's environment sets every variable
# of deploy/nginx/gateway.conf.template. scripts/check-services-table.sh holds the services
# against scripts/lib/services.sh.
#
# docker-compose is installed when missing (Debian's package; lib/install.sh). Where it
# cannot be (not root, no apt-get), the check is skipped with one line saying so, except
# under CI=true, where a skipped check would hide a broken compose.yaml: it fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/install.sh
source "$ROOT/scripts/lib/install.sh"

# Why docker-compose cannot be had here (nothing when it is there or can be installed).
reason=""
DOCKER_COMPOSE_BIN=""
if [[ -z "${DOCKER_COMPOSE:-}" ]] && ! install_find_cmd docker-compose >/dev/null; then
    reason="$(install_apt_blocker)"
fi
if [[ -z "$reason" ]]; then
    DOCKER_COMPOSE_BIN="$(install_find_docker_compose)" || reason="could not install it, see above"
fi
if [[ -n "$reason" ]]; then
    if [[ "${CI:-}" == true ]]; then
        echo "check-compose: FAILED: docker-compose is not installed and cannot be installed here ($reason); CI=true does not skip: apt-get install docker-compose" >&2
        exit 1
    fi
    echo "check-compose: SKIPPED: docker-compose is not installed and cannot be installed here ($reason; apt-get install docker-compose)"
    exit 0
fi

placeholders=(JWT_SECRET SERVICE_TOKEN_SECRET POSTGRES_PASSWORD AUTH_DB_PASSWORD VOTE_DB_PASSWORD
    RECORDING_DB_PASSWORD FEED_DB_PASSWORD S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY)
for name in "${placeholders[@]}"; do export "$name=placeholder-$name"; done
services="$("$DOCKER_COMPOSE_BIN" -f "$ROOT/compose.yaml" config --services | sort | tr '\n' ' ')"
echo "check-compose: compose.yaml is valid; services: $services"

# The nginx image leaves an unset ${GATEWAY_*} in the template as it is, which nginx then
# refuses: every variable of the template must be in the gateway's environment.
config="$("$DOCKER_COMPOSE_BIN" -f "$ROOT/compose.yaml" config)"
# shellcheck disable=SC2016 # the pattern is a literal ${GATEWAY_...}
for var in $(grep -o '\${GATEWAY_[A-Z_]*}' "$ROOT/deploy/nginx/gateway.conf.template" | tr -d '${}' | sort -u); do
    grep -Eq "^ +$var:" <<<"$config" || { echo "check-compose: the gateway's environment lacks $var (used in deploy/nginx/gateway.conf.template)" >&2; exit 1; }
done
echo "check-compose: the gateway's environment sets every template variable"

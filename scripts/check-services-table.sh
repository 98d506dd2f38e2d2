#!/usr/bin/env bash
# check-services-table.sh: holds the table of scripts/lib/services.sh (the services of
# `make up` and `make test`) against compose.yaml, so that the native stack and the
# containers cannot drift apart:
#   - every service of the table is a compose service, listening on the table's port
#     (HTTP_PORT), and every compose service that is built from this repo is in the table;
#   - its compose environment sets the common variables, the table's variables of that
#     service, and the S3 variables exactly when the table says it uses object storage;
#   - OUTBOX_TARGETS names exactly the table's outbox targets, and every URL of a service
#     (OUTBOX_TARGETS, AUTH_URL, ...) and the gateway's upstreams use that service's port.
#
# compose.yaml is read as `docker-compose config` prints it (anchors merged, ${...}
# interpolated) when docker-compose is there, else as it is; either way with PyYAML, in
# a Python that lib/install.sh's install_find_yaml_python finds (python3, docker-compose's,
# Debian's, schemathesis' venv) or else installs (pyyaml, in a venv). Where none can be
# had, the check is skipped with one line saying so, except under CI=true, where a skipped
# check would hide a drift: it fails (as scripts/check-compose.sh does).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=lib/install.sh
source "$ROOT/scripts/lib/install.sh"

die() {
    echo "check-services-table: $*" >&2
    exit 1
}

# A Python that can import yaml, found or installed (its messages go to stderr).
if ! PYTHON="$(install_find_yaml_python)"; then
    if [[ "${CI:-}" == true ]]; then
        die "FAILED: cannot read compose.yaml: no Python with PyYAML, and none could be installed (see the line above); CI=true does not skip: apt-get install python3-yaml, or pip install pyyaml (or set YAML_PYTHON)"
    fi
    echo "check-services-table: SKIPPED: no Python with PyYAML to read compose.yaml, and none could be installed here (install python3-yaml, or pip install pyyaml, or set YAML_PYTHON)"
    exit 0
fi

source_desc="compose.yaml (PyYAML)"
compose_yaml="$(cat "$ROOT/compose.yaml")"
if command -v docker-compose >/dev/null 2>&1; then
    # Placeholders for the secrets compose insists on (${VAR:?...}).
    # shellcheck disable=SC2016 # the pattern is a literal ${
    for name in $(grep -o '\${[A-Z0-9_]*:?' "$ROOT/compose.yaml" | tr -d '${:?' | sort -u); do
        export "$name=${!name:-placeholder-$name}"
    done
    compose_yaml="$(docker-compose -f "$ROOT/compose.yaml" config)" || die "docker-compose config failed"
    source_desc="docker-compose config"
fi

COMPOSE_YAML="$compose_yaml" SERVICES_TABLE_DUMP="$(services_dump)" \
    SERVICES_COMMON_VARS="$SERVICES_COMMON_VARS" SERVICES_STORAGE_VARS="$SERVICES_STORAGE_VARS" \
    SOURCE_DESC="$source_desc" "$PYTHON" - <<'PY'
import os, re, sys, yaml

compose = yaml.safe_load(os.environ["COMPOSE_YAML"])
services = compose.get("services") or {}
common = os.environ["SERVICES_COMMON_VARS"].split()
storage_vars = os.environ["SERVICES_STORAGE_VARS"].split()
table = {}
for line in os.environ["SERVICES_TABLE_DUMP"].splitlines():
    name, port, outbox, storage, names = line.split()
    table[name] = {"port": port, "outbox": outbox == "yes", "storage": storage == "yes",
                   "vars": [] if names == "-" else names.split(",")}

errors = []
def environment(name):
    env = (services.get(name) or {}).get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", ...]
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: ("" if v is None else str(v)) for k, v in env.items()}

def check_urls(owner, var, value):
    """Every http://SERVICE:PORT in value must use that service's table port."""
    for host, port in re.findall(r"http://([a-z0-9_-]+):(\d+)", value):
        if host in table and port != table[host]["port"]:
            errors.append(f"{owner}: {var} reaches {host} on port {port}, the table says {table[host]['port']}")

for name, row in table.items():
    if name not in services:
        errors.append(f"{name}: in the table, not a compose service")
        continue
    env = environment(name)
    if env.get("HTTP_PORT") != row["port"]:
        errors.append(f"{name}: compose HTTP_PORT is {env.get('HTTP_PORT')!r}, the table says {row['port']}")
    for var in common + row["vars"]:
        if var not in env:
            errors.append(f"{name}: compose does not set {var} (scripts/lib/services.sh lists it)")
    has_storage = [v for v in storage_vars if v in env]
    if row["storage"] and len(has_storage) != len(storage_vars):
        missing = sorted(set(storage_vars) - set(has_storage))
        errors.append(f"{name}: uses object storage in the table, compose lacks {' '.join(missing)}")
    if not row["storage"] and has_storage:
        errors.append(f"{name}: compose gives it object storage ({' '.join(has_storage)}), the table does not")
    for var, value in env.items():
        check_urls(name, var, value)
    if "OUTBOX_TARGETS" in env:
        targets = {item.split("=", 1)[0] for item in env["OUTBOX_TARGETS"].split(",") if item}
        expected = {n for n, r in table.items() if r["outbox"]}
        if targets != expected:
            errors.append(f"{name}: OUTBOX_TARGETS names {sorted(targets)}, the table's outbox targets are {sorted(expected)}")

# Services built from this repository must be in the table.
for name, spec in services.items():
    if isinstance(spec, dict) and "build" in spec and name not in table:
        errors.append(f"{name}: a compose service built from this repo, missing from scripts/lib/services.sh")

# The gateway's upstreams: GATEWAY_<SERVICE>_SERVERS for every service, on its port.
gateway = environment("gateway")
for name, row in table.items():
    var = f"GATEWAY_{name.upper()}_SERVERS"
    value = gateway.get(var)
    if value is None:
        errors.append(f"gateway: compose does not set {var}")
        continue
    ports = re.findall(rf"server {re.escape(name)}:(\d+)", value)
    if not ports or any(p != row["port"] for p in ports):
        errors.append(f"gateway: {var} is {value!r}, the table's port of {name} is {row['port']}")

source = os.environ["SOURCE_DESC"]
if errors:
    for error in errors:
        print(f"check-services-table: {error}", file=sys.stderr)
    print(f"check-services-table: FAILED: scripts/lib/services.sh and {source} disagree ({len(errors)} problems)", file=sys.stderr)
    sys.exit(1)
print(f"check-services-table: scripts/lib/services.sh and {source} agree on {', '.join(table)}: ports, variables, storage, outbox targets, gateway upstreams")
PY

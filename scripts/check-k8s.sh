#!/usr/bin/env bash
# check-k8s.sh [--sync]: holds the Kubernetes manifests (deploy/k8s) to the schema of a
# pinned Kubernetes version and to the rest of the repository:
#   - base and each overlay render with `kubectl kustomize`, and every manifest of each
#     rendering validates with kubernetes-validate against Kubernetes $K8S_VERSION,
#     strictly (a field the schema does not know fails);
#   - every variable a service reads (scripts/lib/services.sh: the common ones, the
#     service's own, and the object store's for storage services) is set in its
#     Deployment, or left to its default by an entry of ALLOWED_DEFAULTS below (with the
#     reason); nothing is set that the service does not read (that table and the README's
#     "Configuration" table); HTTP_PORT, the container and Service ports, the URLs of other
#     services and OUTBOX_TARGETS agree with the table;
#   - the images are the Dockerfile's targets (backend-<service>, one per service of the
#     table; the gateway, PostgreSQL and SeaweedFS as in compose.yaml);
#   - the gateway's environment sets every ${GATEWAY_*} of the template, its upstreams
#     use the table's ports, and its template (and dev's PostgreSQL init script) are the
#     files of deploy/ (kustomize reads nothing outside deploy/k8s, so those are copies:
#     --sync refreshes them);
#   - per service: a Service, HorizontalPodAutoscaler and PodDisruptionBudget; probes
#     (/health, /ready, a startup probe); terminationGracePeriodSeconds covering the
#     preStop delay, SHUTDOWN_GRACE_SECONDS and the cancellation after it; every container
#     non-root (numeric uid), read-only root, no privilege escalation, all capabilities
#     dropped, the RuntimeDefault seccomp profile, requests and limits;
#   - NetworkPolicies: a default deny, and each workload reachable from exactly the
#     workloads that call it (the gateway; auth's outbox for outbox targets; a service
#     with <SERVICE>_URL for that service; the services for PostgreSQL, the storage
#     services for SeaweedFS).
#
# Offline but for the first run: kubernetes-validate is installed into a venv when
# missing (lib/install.sh, as the other PyPI tools). kubectl (with kustomize 5) is not
# installable from Debian: where it is missing the check is skipped with one line, except
# under CI=true, where it fails. Env: KUBECTL, KUBERNETES_VALIDATE (use these executables).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=lib/install.sh
source "$ROOT/scripts/lib/install.sh"

# The Kubernetes version the manifests are held to, and the validator that knows it.
K8S_VERSION=1.32.0
KUBERNETES_VALIDATE_PACKAGE="kubernetes-validate==1.37.0"
K8S_DIR="$ROOT/deploy/k8s"
RENDERINGS=(base overlays/dev overlays/prod)
# original:copy, relative to the repository.
COPIES=(
    deploy/nginx/gateway.conf.template:deploy/k8s/base/gateway/gateway.conf.template
    deploy/postgres/init.sh:deploy/k8s/overlays/dev/postgres/init.sh
)
# The web app's files, which the gateway's ConfigMap serves.
for f in "$ROOT"/web/*.*; do COPIES+=("web/${f##*/}:deploy/k8s/base/gateway/web/${f##*/}"); done

fail() {
    echo "check-k8s: FAILED: $*" >&2
    exit 1
}

if [[ "${1:-}" == --sync ]]; then
    for pair in "${COPIES[@]}"; do
        cp "$ROOT/${pair%%:*}" "$ROOT/${pair#*:}"
        echo "check-k8s: copied ${pair%%:*} to ${pair#*:}"
    done
    exit 0
fi
[[ $# -eq 0 ]] || fail "usage: scripts/check-k8s.sh [--sync]"

for pair in "${COPIES[@]}"; do
    if ! cmp -s "$ROOT/${pair%%:*}" "$ROOT/${pair#*:}"; then
        echo "check-k8s: FAILED: ${pair#*:} is not a copy of ${pair%%:*} (kustomize cannot read the original); run scripts/check-k8s.sh --sync. The difference:" >&2
        diff -u "$ROOT/${pair#*:}" "$ROOT/${pair%%:*}" | head -n 20 >&2 || true
        exit 1
    fi
done

# kubectl, with a kustomize that knows `labels` and regex patch targets (v5).
if [[ -n "${KUBECTL:-}" ]]; then
    KUBECTL_BIN="$(install_find_cmd "$KUBECTL")" || fail "KUBECTL=$KUBECTL is not an executable"
else
    KUBECTL_BIN="$(install_find_cmd kubectl /usr/bin/kubectl /usr/local/bin/kubectl)" || KUBECTL_BIN=""
fi
if [[ -z "$KUBECTL_BIN" ]]; then
    how="install kubectl 1.27 or later (it bundles kustomize 5), or set KUBECTL"
    [[ "${CI:-}" == true ]] && fail "kubectl is not installed; CI=true does not skip: $how"
    echo "check-k8s: SKIPPED: kubectl is not installed ($how)"
    exit 0
fi
kustomize_version="$("$KUBECTL_BIN" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}//p')"
[[ "${kustomize_version%%.*}" =~ ^[0-9]+$ && "${kustomize_version%%.*}" -ge 5 ]] ||
    fail "$KUBECTL_BIN bundles kustomize '${kustomize_version:-unknown}'; these manifests need kustomize 5 (kubectl 1.27 or later)"

# kubernetes-validate: KUBERNETES_VALIDATE, else on PATH or in its venv, else installed there.
if [[ -n "${KUBERNETES_VALIDATE:-}" ]]; then
    VALIDATE="$(install_find_cmd "$KUBERNETES_VALIDATE")" || fail "KUBERNETES_VALIDATE=$KUBERNETES_VALIDATE is not an executable"
else
    VALIDATE="$(install_via_pip kubernetes-validate "$KUBERNETES_VALIDATE_PACKAGE" kubernetes-validate)" ||
        fail "kubernetes-validate is needed (see the line above)"
fi
# Its own Python (a venv's), which has the library and PyYAML.
PYTHON="$(head -n1 "$VALIDATE" | sed -n 's/^#! *\([^ ]*python[^ ]*\).*/\1/p')"
[[ -n "$PYTHON" && -x "$PYTHON" ]] || fail "cannot tell which Python runs $VALIDATE (its first line: $(head -n1 "$VALIDATE"))"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for rendering in "${RENDERINGS[@]}"; do
    out="$WORK/${rendering//\//-}.yaml"
    "$KUBECTL_BIN" kustomize "$K8S_DIR/$rendering" >"$out" 2>"$WORK/err" ||
        fail "kubectl kustomize deploy/k8s/$rendering: $(cat "$WORK/err")"
done

# service|port|outbox|storage|variables|knobs, one line per service of the table.
table=""
for svc in $SERVICES; do
    table+="$svc|${SERVICE_TABLE_PORT[$svc]}|${SERVICE_OUTBOX[$svc]}|${SERVICE_STORAGE[$svc]}|${SERVICE_VARS[$svc]}|${SERVICE_KNOBS[$svc]}"$'\n'
done

ROOT="$ROOT" WORK="$WORK" RENDERINGS="${RENDERINGS[*]}" K8S_VERSION="$K8S_VERSION" TABLE="$table" \
    SERVICES_COMMON_VARS="$SERVICES_COMMON_VARS" SERVICES_STORAGE_VARS="$SERVICES_STORAGE_VARS" \
    "$PYTHON" - <<'PY'
import functools, os, re, sys
import yaml
import kubernetes_validate
from kubernetes_validate import utils as kv_utils

ROOT = os.environ["ROOT"]
K8S_VERSION = os.environ["K8S_VERSION"]

# Variables of the table (common, the service's own, the object store's) that a
# Deployment may leave to the service's default, each with the reason. Every other one is
# set by every Deployment. An entry is a decision, e.g.
#   "LOG_LEVEL": "the service's default (info) is what we want everywhere",
ALLOWED_DEFAULTS = {
    # The base's store is the endpoint of a Secret (https, say), which the gateway does not
    # proxy: recording and feed stream downloads themselves (README, Kubernetes).
    "STORAGE_GATEWAY_PATH": "downloads are streamed by the services",
}

def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()

errors = []
def error(where, message):
    errors.append(f"{where}: {message}")

# --- What the repository says --------------------------------------------------------
common = os.environ["SERVICES_COMMON_VARS"].split()
storage_vars = os.environ["SERVICES_STORAGE_VARS"].split()
table = {}
for line in os.environ["TABLE"].splitlines():
    if not line.strip():
        continue
    name, port, outbox, storage, variables, knobs = line.split("|")
    table[name] = {
        "port": int(port), "outbox": outbox == "yes", "storage": storage == "yes",
        "vars": [spec.split("=", 1)[0] for spec in variables.split()], "knobs": knobs.split(),
    }

# Who calls whom: a service with <OTHER>_URL calls OTHER; the holder of OUTBOX_TARGETS
# (auth) calls every outbox target's /internal/events.
callers = {name: set() for name in table}
for name, row in table.items():
    for var in row["vars"]:
        if var.endswith("_URL") and var[:-4].lower() in table:
            callers[var[:-4].lower()].add(name)
        if var == "OUTBOX_TARGETS":
            for target, target_row in table.items():
                if target_row["outbox"]:
                    callers[target].add(name)

# Every variable the README's "Configuration" table documents (first column).
readme = read("README.md")
section = re.search(r"^## Configuration\n(.*?)(?=^## )", readme, re.S | re.M)
documented = set()
if section:
    for row in re.findall(r"^\|([^|\n]*)\|", section.group(1), re.M):
        documented.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", row))
if not documented:
    error("README.md", "found no variables in its \"## Configuration\" table")

# The Dockerfile's targets: SERVICE=a|b|c and the tag of its build command.
dockerfile = read("Dockerfile")
targets = re.search(r"SERVICE=([a-z]+(?:\|[a-z]+)+)", dockerfile)
tag = re.search(r"--build-arg SERVICE=([a-z]+) -t (\S+)", dockerfile)
image_of = {}
if not targets or not tag:
    error("Dockerfile", "cannot find its targets (\"SERVICE=auth|vote|...\") or its build command (\"--build-arg SERVICE=x -t name\")")
else:
    if set(targets.group(1).split("|")) != set(table):
        error("Dockerfile", f"builds {targets.group(1)}, scripts/lib/services.sh has {'|'.join(table)}")
    example, example_tag = tag.groups()
    for name in table:
        image_of[name] = example_tag.replace(example, name)
package = read("Package.swift")
for name in table:
    if f'"{name}-service"' not in package:
        error("Package.swift", f"has no product {name}-service, which the Dockerfile builds for {name}")

# The other images: as in compose.yaml.
compose = yaml.safe_load(read("compose.yaml"))
compose_images = {name: (spec or {}).get("image") for name, spec in (compose.get("services") or {}).items()}

# The drain: SHUTDOWN_GRACE_SECONDS' default and the cancellation after it.
config_swift = read("Shared/Sources/Shared/Config/CommonConfiguration.swift")
main_swift = read("Shared/Sources/Shared/Service/ServiceMain.swift")
grace_default = re.search(r'"SHUTDOWN_GRACE_SECONDS", default: (\d+)', config_swift)
cancellation = re.search(r"maximumCancellationDuration = \.seconds\((\d+)\)", main_swift)
if not grace_default or not cancellation:
    error("check-k8s.sh", "cannot find SHUTDOWN_GRACE_SECONDS' default (CommonConfiguration.swift) or maximumCancellationDuration (ServiceMain.swift)")
grace_default = int(grace_default.group(1)) if grace_default else 25
cancellation = int(cancellation.group(1)) if cancellation else 2

template = read("deploy/nginx/gateway.conf.template")
template_vars = sorted(set(re.findall(r"\$\{(GATEWAY_[A-Z0-9_]*)\}", template)))
init_script = read("deploy/postgres/init.sh")

# --- Schema ------------------------------------------------------------------------
# The schema files are read once, not once per manifest (they do not change).
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)
known_versions = sorted({kv_utils.major_minor(v) for v in kv_utils.all_versions()}, key=lambda v: tuple(map(int, v.split("."))))
if kv_utils.major_minor(K8S_VERSION) not in known_versions:
    print(f"check-k8s: FAILED: this kubernetes-validate ({kubernetes_validate.__version__}) has no schemas for Kubernetes {K8S_VERSION}, "
          f"only for {', '.join(known_versions)}: install the pinned one (remove its venv, or set KUBERNETES_VALIDATE)", file=sys.stderr)
    sys.exit(1)

def validate(where, doc):
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.absolute_path) or "(top)"
        error(where, f"not valid for Kubernetes {K8S_VERSION}: {path}: {e.message}")
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.utils.VersionNotSupportedError) as e:
        error(where, e.message)

# --- Helpers -------------------------------------------------------------------------
def selects(selector, labels):
    """Whether a LabelSelector matches labels ({} matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values: return False
        if op == "NotIn" and labels.get(key) in values: return False
        if op == "Exists" and key not in labels: return False
        if op == "DoesNotExist" and key in labels: return False
    return True

def sleep_seconds(container):
    pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {})
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = (pre_stop.get("exec") or {}).get("command") or []
    if len(command) == 2 and command[0] in ("sleep", "/bin/sleep") and command[1].isdigit():
        return int(command[1])
    return 0

def image_name(image):
    """registry/path/name:tag@digest -> name."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]

# --- One rendering -------------------------------------------------------------------
def check(rendering, docs):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind"), {})[doc["metadata"]["name"]] = doc
    configmaps = {name: doc.get("data") or {} for name, doc in by_kind.get("ConfigMap", {}).items()}
    deployments = by_kind.get("Deployment", {})
    services = by_kind.get("Service", {})

    def environment(where, container, optional_ok=()):
        """The container's variables: name -> value (None when it comes from a Secret).
        Only variables in optional_ok (knobs: the service has a default) may come from an
        optional Secret key."""
        env = {}
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                if name not in configmaps:
                    error(where, f"envFrom names ConfigMap {name}, which this rendering does not have")
                env.update(configmaps.get(name, {}))
            else:
                error(where, "envFrom a Secret hides which variables it sets: give each one a secretKeyRef")
        for item in container.get("env") or []:
            value_from = item.get("valueFrom") or {}
            if "configMapKeyRef" in value_from:
                ref = value_from["configMapKeyRef"]
                if ref["key"] not in configmaps.get(ref["name"], {}):
                    error(where, f"{item['name']} comes from ConfigMap {ref['name']} key {ref['key']}, which this rendering does not have")
                env[item["name"]] = configmaps.get(ref["name"], {}).get(ref["key"])
            elif "secretKeyRef" in value_from:
                if value_from["secretKeyRef"].get("optional") and item["name"] not in optional_ok:
                    error(where, f"{item['name']} comes from an optional secret key: a missing Secret would start the service without it")
                env[item["name"]] = None
            elif value_from:
                env[item["name"]] = None
            else:
                env[item["name"]] = item.get("value", "")
        return env

    # Every workload: security, resources.
    workloads = {}
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
        for name, doc in by_kind.get(kind, {}).items():
            template_spec = doc["spec"]["jobTemplate"]["spec"]["template"] if kind == "CronJob" else doc["spec"]["template"]
            workloads[f"{kind}/{name}"] = template_spec
            where = f"{rendering}: {kind}/{name}"
            pod = template_spec["spec"]
            pod_security = pod.get("securityContext") or {}
            for container in (pod.get("initContainers") or []) + pod["containers"]:
                cwhere = f"{where} container {container['name']}"
                security = container.get("securityContext") or {}
                merged = {**pod_security, **security}
                if merged.get("runAsNonRoot") is not True:
                    error(cwhere, "runAsNonRoot is not true")
                if not isinstance(merged.get("runAsUser"), int) or merged.get("runAsUser") == 0:
                    error(cwhere, "no numeric non-root runAsUser (the kubelet cannot check runAsNonRoot against a named user)")
                if (merged.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                    error(cwhere, "no seccompProfile RuntimeDefault (the restricted Pod Security Standard needs one)")
                if security.get("allowPrivilegeEscalation") is not False:
                    error(cwhere, "allowPrivilegeEscalation is not false")
                if security.get("readOnlyRootFilesystem") is not True:
                    error(cwhere, "readOnlyRootFilesystem is not true")
                if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
                    error(cwhere, "capabilities do not drop ALL")
                resources = container.get("resources") or {}
                for part in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if resource not in (resources.get(part) or {}):
                            error(cwhere, f"no {resource} in resources.{part}")

    # The services.
    for name, row in table.items():
        where = f"{rendering}: Deployment/{name}"
        deployment = deployments.get(name)
        if deployment is None:
            error(f"{rendering}", f"no Deployment {name} (a service of scripts/lib/services.sh)")
            continue
        pod = deployment["spec"]["template"]["spec"]
        containers = pod["containers"]
        if len(containers) != 1:
            error(where, f"has {len(containers)} containers, expected the service's alone")
        container = containers[0]
        if name in image_of and image_name(container["image"]) != image_of[name]:
            error(where, f"image {container['image']} is not the Dockerfile's target {image_of[name]} (docker build --build-arg SERVICE={name} -t {image_of[name]} .)")
        env = environment(where, container, optional_ok=row["knobs"])
        required = common + row["vars"] + (storage_vars if row["storage"] else [])
        for var in required:
            if var not in env and var not in ALLOWED_DEFAULTS:
                error(where, f"does not set {name}'s {var} (scripts/lib/services.sh), and ALLOWED_DEFAULTS in scripts/check-k8s.sh does not leave it to its default")
        readable = set(common) | set(row["vars"]) | set(row["knobs"]) | documented
        readable |= set(storage_vars) if row["storage"] else set()
        for var in env:
            if var in storage_vars and not row["storage"]:
                error(where, f"sets {var}, but {name} keeps no objects (storage 'no' in scripts/lib/services.sh)")
            elif var not in readable:
                error(where, f"sets {var}, which {name} does not read (neither scripts/lib/services.sh nor README.md \"Configuration\" lists it)")
        if env.get("HTTP_PORT") != str(row["port"]):
            error(where, f"HTTP_PORT is {env.get('HTTP_PORT')!r}, the table's port of {name} is {row['port']}")
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        if ports.get("http") != row["port"]:
            error(where, f"its container port 'http' is {ports.get('http')}, the table's port of {name} is {row['port']}")
        for var, value in env.items():
            for host, port in re.findall(r"https?://([a-z0-9-]+)(?:\.[a-z0-9.-]*)?:(\d+)", value or ""):
                if host in table and int(port) != table[host]["port"]:
                    error(where, f"{var} reaches {host} on port {port}, the table's port of {host} is {table[host]['port']}")
        if "OUTBOX_TARGETS" in env and env["OUTBOX_TARGETS"] is not None:
            named = {item.split("=", 1)[0] for item in env["OUTBOX_TARGETS"].split(",") if item}
            expected = {n for n, r in table.items() if r["outbox"]}
            if named != expected:
                error(where, f"OUTBOX_TARGETS names {sorted(named)}, the table's outbox targets are {sorted(expected)}")
        # Probes and drain.
        startup, liveness, readiness = (container.get(p) for p in ("startupProbe", "livenessProbe", "readinessProbe"))
        if not startup:
            error(where, "no startupProbe (migrations run before the server listens)")
        for probe, kind, path in ((startup, "startupProbe", "/health"), (liveness, "livenessProbe", "/health"), (readiness, "readinessProbe", "/ready")):
            got = ((probe or {}).get("httpGet") or {}).get("path")
            if got != path:
                error(where, f"{kind} is not an httpGet of {path} (it is {got!r})")
        pre_stop = sleep_seconds(container)
        grace = env.get("SHUTDOWN_GRACE_SECONDS") or str(grace_default)
        termination = pod.get("terminationGracePeriodSeconds", 30)
        if pre_stop < 1:
            error(where, "no preStop delay (sleep): the pod would get SIGTERM while endpoints still send it requests")
        if not grace.isdigit() or termination < pre_stop + int(grace) + cancellation + 1:
            error(where, f"terminationGracePeriodSeconds {termination} does not cover preStop {pre_stop} s + SHUTDOWN_GRACE_SECONDS {grace} s + {cancellation} s of cancellation (+1)")
        # Its Service, autoscaler and disruption budget.
        service = services.get(name)
        if service is None:
            error(f"{rendering}", f"no Service {name}")
        else:
            if not selects({"matchLabels": service["spec"].get("selector") or {}}, deployment["spec"]["template"]["metadata"].get("labels") or {}):
                error(f"{rendering}: Service/{name}", "does not select the pods of its Deployment")
            if [p["port"] for p in service["spec"]["ports"]] != [row["port"]]:
                error(f"{rendering}: Service/{name}", f"ports {[p['port'] for p in service['spec']['ports']]}, the table's port of {name} is {row['port']}")
        hpa = [d for d in by_kind.get("HorizontalPodAutoscaler", {}).values() if d["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}]
        if not hpa or not any(m.get("resource", {}).get("name") == "cpu" for m in hpa[0]["spec"].get("metrics") or []):
            error(f"{rendering}", f"no HorizontalPodAutoscaler on CPU for Deployment {name}")
        pod_labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
        if not any(selects(d["spec"].get("selector"), pod_labels) for d in by_kind.get("PodDisruptionBudget", {}).values()):
            error(f"{rendering}", f"no PodDisruptionBudget selects the pods of {name}")

    # The gateway.
    gateway = deployments.get("gateway")
    if gateway is None:
        error(rendering, "no Deployment gateway")
    else:
        where = f"{rendering}: Deployment/gateway"
        pod = gateway["spec"]["template"]["spec"]
        container = pod["containers"][0]
        if container["image"] != compose_images.get("gateway"):
            error(where, f"image {container['image']}, compose.yaml's gateway runs {compose_images.get('gateway')}")
        env = environment(where, container)
        for var in template_vars:
            if var not in env:
                error(where, f"does not set {var} (deploy/nginx/gateway.conf.template uses it; nginx would refuse the unrendered ${{{var}}})")
        if env.get("NGINX_ENVSUBST_FILTER") != "GATEWAY_":
            error(where, "NGINX_ENVSUBST_FILTER is not GATEWAY_ (nginx's own $variables would be substituted)")
        for name, row in table.items():
            var = f"GATEWAY_{name.upper()}_SERVERS"
            servers = re.findall(r"server ([a-z0-9.-]+):(\d+)", env.get(var) or "")
            if not servers or any(host.split(".")[0] != name or int(port) != row["port"] for host, port in servers):
                error(where, f"{var} is {env.get(var)!r}, expected \"server {name}:{row['port']};\"")
        templates = [v["configMap"]["name"] for v in pod.get("volumes") or [] if "configMap" in v]
        if not any(configmaps.get(cm, {}).get("default.conf.template") == template for cm in templates):
            error(where, "mounts no ConfigMap whose default.conf.template is deploy/nginx/gateway.conf.template")
        if not any(rule.get("http", {}).get("paths", [{}])[0].get("backend", {}).get("service", {}).get("name") == "gateway"
                   for ingress in by_kind.get("Ingress", {}).values() for rule in ingress["spec"].get("rules") or []):
            error(rendering, "no Ingress sends traffic to the gateway")

    # In-cluster PostgreSQL and SeaweedFS, where the rendering has them.
    statefulsets = by_kind.get("StatefulSet", {})
    for name, compose_name in (("postgres", "postgres"), ("seaweedfs", "seaweedfs")):
        if name in statefulsets:
            image = statefulsets[name]["spec"]["template"]["spec"]["containers"][0]["image"]
            if image != compose_images.get(compose_name):
                error(f"{rendering}: StatefulSet/{name}", f"image {image}, compose.yaml's {compose_name} runs {compose_images.get(compose_name)}")
    if "postgres" in statefulsets:
        pod = statefulsets["postgres"]["spec"]["template"]["spec"]
        mounted = [v["configMap"]["name"] for v in pod.get("volumes") or [] if "configMap" in v]
        if not any(init_script in configmaps.get(cm, {}).values() for cm in mounted):
            error(f"{rendering}: StatefulSet/postgres", "mounts no ConfigMap holding deploy/postgres/init.sh")

    # NetworkPolicies: who may reach each workload.
    policies = list(by_kind.get("NetworkPolicy", {}).values())
    if not any(p["spec"].get("podSelector") in ({}, None) and "Ingress" in (p["spec"].get("policyTypes") or [])
               and not p["spec"].get("ingress") for p in policies):
        error(rendering, "no default-deny NetworkPolicy (podSelector {}, policyTypes [Ingress], no rules)")
    # Each workload's pod labels and ports (numbers and names).
    pods, pod_ports = {}, {}
    for template_spec in workloads.values():
        labels = template_spec["metadata"].get("labels") or {}
        name = labels.get("app.kubernetes.io/name", "?")
        pods[name] = labels
        pod_ports[name] = {value for container in template_spec["spec"]["containers"]
                           for port in container.get("ports") or [] for value in (port["containerPort"], port.get("name"))}
    expected = {"gateway": {"anyone"}, "postgres": set(table), "seaweedfs": {n for n, r in table.items() if r["storage"]}}
    for name in table:
        expected[name] = {"gateway"} | callers[name]
    for name, labels in pods.items():
        allowed = set()
        for policy in policies:
            if not selects(policy["spec"].get("podSelector"), labels):
                continue
            for rule in policy["spec"].get("ingress") or []:
                peers = rule.get("from") or []
                if not peers:
                    allowed.add("anyone")
                for peer in peers:
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        allowed |= {other for other, other_labels in pods.items() if selects(peer["podSelector"], other_labels)}
                    else:
                        allowed.add("outside the namespace")
                # A rule opens the workload's own ports, nothing else.
                rule_ports = [p.get("port") for p in rule.get("ports") or []]
                if not rule_ports or any(p not in pod_ports[name] for p in rule_ports):
                    error(f"{rendering}: NetworkPolicy/{policy['metadata']['name']}", f"a rule for {name} opens ports {rule_ports or 'all'}, not only its container ports")
        if name not in expected:
            error(rendering, f"workload {name} has no expected callers in scripts/check-k8s.sh")
        elif allowed != expected[name]:
            error(f"{rendering}: NetworkPolicy", f"{name} accepts connections from {sorted(allowed) or 'nobody'}, expected {sorted(expected[name])}")

for rendering in os.environ["RENDERINGS"].split():
    path = os.path.join(os.environ["WORK"], rendering.replace("/", "-") + ".yaml")
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    before = len(errors)
    for doc in docs:
        validate(f"{rendering}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}", doc)
    check(rendering, docs)
    if len(errors) == before:
        print(f"check-k8s: deploy/k8s/{rendering}: {len(docs)} manifests valid for Kubernetes {K8S_VERSION} (strict); services, images, environment, probes, drain, security, network policies agree with the repository")

if errors:
    for e in errors:
        print(f"check-k8s: {e}", file=sys.stderr)
    print(f"check-k8s: FAILED: {len(errors)} problems in deploy/k8s", file=sys.stderr)
    sys.exit(1)
PY

# shellcheck shell=bash
# The nginx gateway for the native stack and the end-to-end tests. Source it.
# The configuration itself is deploy/nginx/gateway.conf.template, shared with compose.

GATEWAY_TEMPLATE="${ROOT:?}/deploy/nginx/gateway.conf.template"

# shellcheck source-path=SCRIPTDIR source=install.sh
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"

# nginx from PATH or /usr/sbin; installed from Debian's packages when missing and we are
# root (without letting the package start a system-wide nginx on port 80): install.sh.
gateway_find_nginx() {
    install_find_nginx
}

# "server host:port;" lines for an upstream, from "host:port host:port ...".
gateway_servers() {
    local out="" address
    for address in "$@"; do out+="server $address max_fails=1 fail_timeout=2s; "; done
    echo "$out"
}

# The recordings body cap: RECORDING_MAX_BYTES (default 100 MiB) plus 10 MiB for the
# multipart framing, in MiB; GATEWAY_RECORDING_MAX_BODY wins when set.
gateway_recording_max_body() {
    if [[ -n "${GATEWAY_RECORDING_MAX_BODY:-}" ]]; then
        echo "$GATEWAY_RECORDING_MAX_BODY"
        return
    fi
    local max="${RECORDING_MAX_BYTES:-104857600}"
    [[ "$max" =~ ^[0-9]+$ ]] || { echo "error: RECORDING_MAX_BYTES must be a number of bytes" >&2 && return 1; }
    echo "$(((max + 1048575) / 1048576 + 10))m"
}

# gateway_render DIR LISTEN SERVICE=ADDRESSES...: writes DIR/nginx.conf (a self-contained
# nginx configuration rooted in DIR) and DIR/gateway.conf (the template with the GATEWAY_*
# values filled in). One argument per service, e.g. "vote=127.0.0.1:8082 127.0.0.1:8092"
# (several addresses: the gateway balances across them); a service of the template that is
# not given fails the rendering (its GATEWAY_<SERVICE>_SERVERS is unset).
# Limits per client address (GATEWAY_AUTH_RATE/_BURST for login and sign-up,
# GATEWAY_REFRESH_*, GATEWAY_PROFILE_*, GATEWAY_PASSWORD_*, GATEWAY_EVENT_STREAMS) and the
# client timeout (GATEWAY_CLIENT_TIMEOUT) come from the caller's environment, else the defaults below, the same as compose.yaml's;
# deploy/nginx/gateway.conf.template says what each one limits. The web app's files come
# from GATEWAY_WEB_ROOT (default: web/ of the repository). Downloads the services hand over
# are read from GATEWAY_STORE_FILES (the folder of the filesystem stores; created here) or
# the S3 store at GATEWAY_OBJECT_STORE (host:port).
gateway_render() {
    local dir="$1" listen="$2" arg svc max_body web_root store_files user_line=""
    shift 2
    max_body="$(gateway_recording_max_body)" || return 1
    web_root="$(cd "${GATEWAY_WEB_ROOT:-$ROOT/web}" 2>/dev/null && pwd)" ||
        { echo "gateway: GATEWAY_WEB_ROOT=${GATEWAY_WEB_ROOT:-$ROOT/web} is not a folder" >&2 && return 1; }
    store_files="${GATEWAY_STORE_FILES:-$dir/no-store}"
    mkdir -p "$store_files" && store_files="$(cd "$store_files" && pwd)"
    # Started as root, nginx serves files from workers running as nobody. A checkout inside
    # a folder that nobody may enter (a home folder, say) would answer every page and
    # download with 403: then the workers run as the files' owner instead.
    if [[ "$(id -u)" -eq 0 ]] && command -v runuser >/dev/null 2>&1 &&
        ! { runuser -u nobody -- test -r "$web_root/index.html" && runuser -u nobody -- test -x "$store_files"; } 2>/dev/null; then
        user_line="user $(stat -c '%U %G' "$web_root");"
    fi
    local -a servers=()
    for arg in "$@"; do
        [[ "$arg" == ?*=?* ]] || { echo "gateway: not SERVICE=ADDRESSES: '$arg'" >&2 && return 1; }
        svc="$(echo "${arg%%=*}" | tr '[:lower:]' '[:upper:]')"
        # shellcheck disable=SC2086 # the addresses are a space-separated list
        servers+=("GATEWAY_${svc}_SERVERS=$(gateway_servers ${arg#*=})")
    done
    mkdir -p "$dir/tmp" "$dir/logs"
    # Workers run unprivileged when nginx starts as root; they write request bodies here.
    chmod 1777 "$dir/tmp"
    env "${servers[@]}" \
        GATEWAY_LISTEN="$listen" \
        GATEWAY_AUTH_RATE="${GATEWAY_AUTH_RATE:-10r/m}" \
        GATEWAY_AUTH_BURST="${GATEWAY_AUTH_BURST:-20}" \
        GATEWAY_REFRESH_RATE="${GATEWAY_REFRESH_RATE:-30r/m}" \
        GATEWAY_REFRESH_BURST="${GATEWAY_REFRESH_BURST:-30}" \
        GATEWAY_PROFILE_RATE="${GATEWAY_PROFILE_RATE:-10r/m}" \
        GATEWAY_PROFILE_BURST="${GATEWAY_PROFILE_BURST:-10}" \
        GATEWAY_PASSWORD_RATE="${GATEWAY_PASSWORD_RATE:-5r/m}" \
        GATEWAY_PASSWORD_BURST="${GATEWAY_PASSWORD_BURST:-10}" \
        GATEWAY_EVENT_STREAMS="${GATEWAY_EVENT_STREAMS:-20}" \
        GATEWAY_CLIENT_TIMEOUT="${GATEWAY_CLIENT_TIMEOUT:-60s}" \
        GATEWAY_RESOLVER="" \
        GATEWAY_RECORDING_MAX_BODY="$max_body" \
        GATEWAY_EXTRA_LOCATIONS="${GATEWAY_EXTRA_LOCATIONS:-}" \
        GATEWAY_WEB_ROOT="$web_root" \
        GATEWAY_STORE_FILES="$store_files" \
        GATEWAY_OBJECT_STORE="${GATEWAY_OBJECT_STORE:-127.0.0.1:9}" \
        GATEWAY_ACCESS_LOG="$dir/logs/access.log" \
        python3 - "$GATEWAY_TEMPLATE" "$dir/gateway.conf" <<'PY' || return 1
import os, re, sys
text = open(sys.argv[1]).read()
def value(match):
    name = match.group(1)
    if name not in os.environ:
        sys.exit(f"gateway: {name} is not set")
    return os.environ[name]
open(sys.argv[2], "w").write(re.sub(r"\$\{(GATEWAY_[A-Z_]+)\}", value, text))
PY
    cat >"$dir/nginx.conf" <<CONF
# Generated by scripts/lib/gateway.sh; edit deploy/nginx/gateway.conf.template instead.
$user_line
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    include $dir/gateway.conf;
}
CONF
}

gateway_pid() {
    local dir="$1" pid
    [[ -f "$dir/nginx.pid" ]] || return 1
    pid="$(cat "$dir/nginx.pid")"
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# Starts nginx on DIR/nginx.conf, or reloads it when it already runs.
gateway_start() {
    local dir="$1" nginx
    nginx="$(gateway_find_nginx)" || return 1
    "$nginx" -t -q -p "$dir" -c "$dir/nginx.conf" || return 1
    if gateway_pid "$dir" >/dev/null; then
        "$nginx" -p "$dir" -c "$dir/nginx.conf" -s reload
    else
        "$nginx" -p "$dir" -c "$dir/nginx.conf"
    fi
}

# Graceful stop: in-flight requests finish.
gateway_stop() {
    local dir="$1" pid i
    pid="$(gateway_pid "$dir")" || return 0
    kill -QUIT "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
}

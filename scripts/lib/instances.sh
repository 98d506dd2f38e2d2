# shellcheck shell=bash
# Part of scripts/stack.sh: the services' instances (build, start, readiness, restart, stop),
# the gateway in front of them, and the search for leftovers of the stack. Source it from
# stack.sh after lib/services.sh and lib/gateway.sh; it uses stack.sh's ROOT, STACK_DIR,
# RUN_DIR, LOG_DIR, GATEWAY_DIR, GATEWAY_PORT, WEED_DIR, BIN_DIR, SWIFT, READY_TIMEOUT, the
# APP_* values, secret, database_url, storage_env, log and pg_die.
#
#   STACK_DIR/run/<instance>.pid, STACK_DIR/logs/<instance>.log (vote, vote-2, ...)
#   STACK_DIR/nginx   the rendered gateway configuration and nginx's own files;
#                     STACK_DIR/logs/gateway.log is its access log

pid_file() { echo "$RUN_DIR/$1.pid"; }

# Alive = the pid exists, is not a zombie and still runs our binary (guards
# against a stale pid file whose pid got reused).
service_pid() {
    local inst="$1" pid
    pid="$(launched_pid "$inst")" || return 1
    ps -p "$pid" -o args= 2>/dev/null | grep -q -- "$(instance_service "$inst")-service" || return 1
    echo "$pid"
}

# launched_pid INSTANCE: the pid in its pid file while that process lives, whatever it
# runs. Just after launch_service it may still be the subshell that closes descriptors
# before it execs the service (ci14: taken for an exit by the name check above).
launched_pid() {
    local file pid state
    file="$(pid_file "$1")"
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    state="$(ps -p "$pid" -o stat= 2>/dev/null)" || return 1
    [[ "$state" == Z* ]] && return 1
    echo "$pid"
}

# The port a running instance listens on, from its own environment (so `status`,
# `addresses` and `restart` are right whatever STACK_PORT_BASE was at `up`); the computed
# one otherwise.
instance_running_port() {
    local inst="$1" pid port=""
    if pid="$(service_pid "$inst")" && [[ -r "/proc/$pid/environ" ]]; then
        port="$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^HTTP_PORT=//p')"
    fi
    [[ "$port" =~ ^[0-9]+$ ]] || port="$(instance_port "$inst")"
    echo "$port"
}

# BIN_DIR: STACK_BIN_DIR as it is (already built, e.g. the debug folder of
# `swift build --show-bin-path`), else the release build (built now unless STACK_SKIP_BUILD=1).
build_services() {
    local svc
    if [[ -n "${STACK_BIN_DIR:-}" ]]; then
        BIN_DIR="$(cd "$STACK_BIN_DIR" && pwd)" || pg_die "STACK_BIN_DIR=$STACK_BIN_DIR is not a folder"
        log "STACK_BIN_DIR: using the binaries in $BIN_DIR (no build)"
    else
        if [[ "${STACK_SKIP_BUILD:-0}" == 1 ]]; then
            log "STACK_SKIP_BUILD=1: using existing release binaries"
        else
            for svc in $SERVICES; do
                log "building $svc-service (release)"
                (cd "$ROOT" && "$SWIFT" build -c release --product "$svc-service")
            done
        fi
        BIN_DIR="$(cd "$ROOT" && "$SWIFT" build -c release --show-bin-path)"
    fi
    for svc in $SERVICES; do
        [[ -x "$BIN_DIR/$svc-service" ]] || pg_die "$BIN_DIR/$svc-service not found; build it first"
    done
}

# What every instance of the stack gets (SERVICES_COMMON_VARS and the JWT claims), plus
# STACK_INSTANCE, which the services ignore: it marks the process as this stack's, so that
# `down` finds an instance whose pid file was lost.
common_env() {
    local inst="$1" svc
    svc="$(instance_service "$inst")"
    echo "APP_ENV=development"
    echo "HTTP_HOST=127.0.0.1"
    echo "HTTP_PORT=$(instance_port "$inst")"
    echo "LOG_LEVEL=$APP_LOG_LEVEL"
    echo "DATABASE_URL=$(database_url "$svc")"
    echo "JWT_SECRET=$(secret JWT_SECRET)"
    echo "SERVICE_TOKEN_SECRET=$(secret SERVICE_TOKEN_SECRET)"
    echo "JWT_ISSUER=$APP_JWT_ISSUER"
    echo "JWT_AUDIENCE=$APP_JWT_AUDIENCE"
    echo "CORS_ALLOWED_ORIGINS=$APP_CORS_ALLOWED_ORIGINS"
    echo "STACK_INSTANCE=$RUN_DIR/$inst"
}

# start_service INSTANCE (a service name, or vote-2 etc.)
start_service() {
    local inst="$1" svc port pid bin environment
    svc="$(instance_service "$inst")"
    port="$(instance_port "$inst")"
    if pid="$(service_pid "$inst")"; then
        log "$inst already running (pid $pid); \`scripts/stack.sh restart $inst\` restarts it with a new build"
        return 0
    fi
    rm -f "$(pid_file "$inst")"
    pg_port_in_use "$port" && pg_die "port $port for $inst is taken by another process (STACK_PORT_BASE moves the services' ports)"
    bin="$BIN_DIR/$svc-service"
    [[ -x "$bin" ]] || pg_die "$bin not found; build it first"
    # The table (lib/services.sh) says what each service takes; a subshell's failure is
    # caught here rather than lost in a process substitution.
    environment="$(service_environment "$inst")" || pg_die "no environment for $inst"
    local -a env_vars=()
    mapfile -t env_vars <<<"$environment"
    launch_service "$inst" "$bin" "${env_vars[@]}"
}

# launch_service INSTANCE BINARY [-i] VAR=VALUE...: starts it in the background, detached,
# with the variables added to this shell's environment (or, after -i, only them).
launch_service() {
    local inst="$1" bin="$2" log_file="$LOG_DIR/$1.log" port="" arg
    shift 2
    for arg in "$@"; do [[ "$arg" == HTTP_PORT=* ]] && port="${arg#HTTP_PORT=}"; done
    echo "--- $(date '+%Y-%m-%d %H:%M:%S') starting $inst-service on 127.0.0.1:${port:-?}" >>"$log_file"
    # setsid: own session, so Ctrl-C or closing the terminal that ran `up` leaves it
    # running. setsid and env both exec, so $! is the service's pid. Inherited file
    # descriptors are closed first: a long-lived service must not keep, say, the build
    # lock of `flock LOCK make up` held.
    (sw_close_inherited_fds && exec setsid env "$@" "$bin" >>"$log_file" 2>&1 </dev/null) &
    echo $! >"$(pid_file "$inst")"
    log "$inst started (pid $!), logs in $(rel "$log_file")"
}

# restart_service INSTANCE [VAR=VALUE...]: stops a running instance and starts it again
# with the environment it ran with (so the storage backend and secrets stay as `up` set
# them), changed by the given variables (an empty VALUE removes VAR), on its binary as
# it is now on disk (so a new build is picked up).
restart_service() {
    local inst="$1" pid entry name override keep bin port
    shift
    pid="$(service_pid "$inst")" || pg_die "$inst is not running (make up)"
    local -a env_vars=()
    while IFS= read -r -d '' entry; do
        name="${entry%%=*}"
        keep=1
        for override in "$@"; do [[ "${override%%=*}" == "$name" ]] && keep=0; done
        ((keep)) && env_vars+=("$entry")
    done <"/proc/$pid/environ"
    for override in "$@"; do
        [[ "$override" == *=* ]] || pg_die "not VAR=VALUE: $override"
        [[ -n "${override#*=}" ]] && env_vars+=("$override")
    done
    port="$(instance_running_port "$inst")"
    bin="$(readlink "/proc/$pid/exe")"
    bin="${bin% (deleted)}"
    stop_service "$inst"
    launch_service "$inst" "$bin" -i "${env_vars[@]}"
    wait_ready "$inst" "$port"
}

# wait_ready INSTANCE [PORT]: until GET /ready answers 2xx, READY_TIMEOUT at most.
wait_ready() {
    local inst="$1" port="${2:-}" url deadline log_file="$LOG_DIR/$1.log"
    [[ -n "$port" ]] || port="$(instance_port "$inst")"
    url="http://127.0.0.1:$port/ready"
    deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! launched_pid "$inst" >/dev/null; then
            tail -n 30 "$log_file" >&2 || true
            pg_die "$inst exited during startup (see $(rel "$log_file"))"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$log_file" >&2 || true
            pg_die "$inst not ready after ${READY_TIMEOUT}s ($url); still running, \`$0 down\` stops it"
        fi
        sleep 0.5
    done
}

stop_service() {
    local inst="$1" pid i
    if ! pid="$(service_pid "$inst")"; then
        rm -f "$(pid_file "$inst")"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    # 75 x 0.2 s = 15 s grace period for a clean shutdown.
    for ((i = 0; ; i++)); do
        service_pid "$inst" >/dev/null || break
        if ((i >= 75)); then
            log "$inst did not stop after 15 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$(pid_file "$inst")"
    log "$inst stopped"
}

reversed_instances() {
    local inst out=""
    for inst in $(all_instances); do out="$inst $out"; done
    echo "$out"
}

# Every instance with a pid file in run/ (so instances from an earlier, larger
# SCALE_<SERVICE> stop too); other pid files there are not instances and are left alone.
recorded_instances() {
    local file inst
    for file in "$RUN_DIR"/*.pid; do
        [[ -f "$file" ]] || continue
        inst="$(basename "$file" .pid)"
        is_instance_name "$inst" && echo "$inst"
    done
    return 0
}

# --------------------------------------------------------------------------- gateway

# deploy/nginx/gateway.conf.template rendered for this stack: every service's instances.
stack_gateway_up() {
    local svc
    local -a upstreams=()
    for svc in $SERVICES; do upstreams+=("$svc=$(service_addresses "$svc")"); done
    GATEWAY_STORE_FILES="$STORAGE_DIR" GATEWAY_OBJECT_STORE="$(storage_gateway_object_store)" \
        gateway_render "$GATEWAY_DIR" "127.0.0.1:$GATEWAY_PORT" "${upstreams[@]}" || pg_die "could not render the gateway"
    ln -sfn ../nginx/logs/access.log "$LOG_DIR/gateway.log"
    gateway_start "$GATEWAY_DIR" || pg_die "the gateway did not start (see $(rel "$GATEWAY_DIR/logs/error.log"))"
    log "gateway on http://localhost:$GATEWAY_PORT"
}

stack_gateway_down() {
    [[ -d "$GATEWAY_DIR" ]] && gateway_stop "$GATEWAY_DIR" && log "gateway stopped"
    return 0
}

# The port from the rendered configuration, which is what runs (GATEWAY_PORT may differ
# from the one given at `up`).
stack_gateway_status() {
    local pid listen
    if pid="$(gateway_pid "$GATEWAY_DIR")"; then
        listen="$(sed -n 's/^ *listen \(.*\);/\1/p' "$GATEWAY_DIR/gateway.conf" | head -n1)"
        printf '%-10s running  pid %-7s http://%s\n' gateway "$pid" "${listen:-localhost:$GATEWAY_PORT}"
    else
        printf '%-10s stopped\n' gateway
    fi
}

# --------------------------------------------------------------------------- leftovers

# "PID WHAT" for every process of this stack still running that `down` would not find by
# its pid file: an instance (STACK_INSTANCE in its environment), the stack's SeaweedFS
# (-dir under STACK_DIR) or its nginx (-c under STACK_DIR). PostgreSQL is not in it:
# pg_ctl finds it by its data folder.
stack_leftovers() {
    local dir pid entry what
    local -a args envs
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        what=""
        mapfile -d "" args 2>/dev/null <"$dir/cmdline" || continue
        [[ ${#args[@]} -gt 0 ]] || continue
        case "${args[*]}" in
            *"weed server"*"-dir=$WEED_DIR/"*) what="SeaweedFS" ;;
            *"nginx: master process"*"-c $GATEWAY_DIR/nginx.conf"*) what="gateway (nginx)" ;;
        esac
        if [[ -z "$what" ]] && mapfile -d "" envs 2>/dev/null <"$dir/environ"; then
            for entry in "${envs[@]}"; do
                if [[ "$entry" == "STACK_INSTANCE=$RUN_DIR/"* ]]; then
                    what="instance ${entry##*/}"
                    break
                fi
            done
        fi
        [[ -n "$what" ]] && echo "$pid $what"
    done
    return 0
}

# TERM, then KILL after 15 s, every leftover.
stop_leftovers() {
    local pid what i
    local -a pids=()
    while read -r pid what; do
        [[ -n "$pid" ]] || continue
        log "stopping a leftover of this stack: $what (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
    done < <(stack_leftovers)
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 75; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
}

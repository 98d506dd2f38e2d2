# shellcheck shell=bash
# Part of scripts/stack.sh: the object store of the services that keep bytes (the table's
# storage column): a folder per service (STORAGE_BACKEND=filesystem, the default), a local
# SeaweedFS (s3 without S3_ENDPOINT) or an external S3 store. Source it from stack.sh after
# lib/seaweedfs.sh; it uses stack.sh's STORAGE_BACKEND, STORAGE_DIR, WEED_DIR, LOG_DIR,
# S3_PORT, WEED_*_PORT, READY_TIMEOUT, secret, ensure_secret, log and pg_die.
#
#   STACK_DIR/storage/<service>  filesystem object store
#   STACK_DIR/seaweedfs/         local SeaweedFS: data, identities file, weed.pid; its log is
#                                STACK_DIR/logs/seaweedfs.log
#
# weed.pid lives in the SeaweedFS folder, not with the instances' pid files in run/: `down`
# stops every pid file of run/ as an instance, which once dropped SeaweedFS's before
# seaweedfs_down looked for it and left SeaweedFS running. An older stack's
# run/seaweedfs.pid is still honoured.

# Local SeaweedFS only when asked for s3 without an external endpoint.
use_local_seaweedfs() {
    [[ "$STORAGE_BACKEND" == s3 && -z "${S3_ENDPOINT:-}" ]]
}

seaweedfs_pid() {
    local file pid
    for file in "$WEED_PID_FILE" "$WEED_LEGACY_PID_FILE"; do
        [[ -f "$file" ]] || continue
        pid="$(cat "$file")"
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        ps -p "$pid" -o args= 2>/dev/null | grep -q -- "weed server" || continue
        echo "$pid"
        return 0
    done
    return 1
}

seaweedfs_up() {
    local pid weed port
    ensure_secret S3_ACCESS_KEY_ID 10
    ensure_secret S3_SECRET_ACCESS_KEY 24
    if pid="$(seaweedfs_pid)"; then
        log "SeaweedFS already running (pid $pid) on 127.0.0.1:$S3_PORT"
        return 0
    fi
    weed="$(sw_find_weed)"
    # Each HTTP port and its gRPC twin (+10000, passed to weed explicitly).
    for port in "$S3_PORT" "$WEED_MASTER_PORT" "$WEED_VOLUME_PORT" "$WEED_FILER_PORT"; do
        if sw_port_in_use "$port" || sw_port_in_use $((port + SW_GRPC_OFFSET)); then
            pg_die "port $port (or $((port + SW_GRPC_OFFSET))) for SeaweedFS is taken (see STACK_S3_PORT and friends; \`scripts/stack.sh status\` shows a SeaweedFS of this stack)"
        fi
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
        pg_die "SeaweedFS not ready after ${READY_TIMEOUT}s (see $(rel "$LOG_DIR/seaweedfs.log"))"
    fi
    log "SeaweedFS started (pid $pid), S3 on 127.0.0.1:$S3_PORT"
}

seaweedfs_down() {
    local pid
    if pid="$(seaweedfs_pid)"; then
        sw_stop "$pid"
        log "SeaweedFS stopped"
    fi
    rm -f "$WEED_PID_FILE" "$WEED_LEGACY_PID_FILE"
}

# host:port of the S3 store for the gateway's /_store/s3/ location (GATEWAY_OBJECT_STORE):
# the local SeaweedFS, or an http S3_ENDPOINT; nothing for the filesystem store or an https
# endpoint (the gateway does not speak TLS to the store: the services stream those).
storage_gateway_object_store() {
    [[ "$STORAGE_BACKEND" == s3 ]] || return 0
    if use_local_seaweedfs; then
        echo "127.0.0.1:$S3_PORT"
    elif [[ "$S3_ENDPOINT" =~ ^http://([^/]+)/?$ ]]; then
        echo "${BASH_REMATCH[1]}"
    fi
}

# The storage variables of a service that keeps objects (recording, feed). Downloads are
# handed to the gateway (STORAGE_GATEWAY_PATH), which reads STORAGE_DIR (GATEWAY_STORE_FILES)
# or the store at storage_gateway_object_store.
storage_env() {
    local svc="$1"
    case "$STORAGE_BACKEND" in
        filesystem)
            echo "STORAGE_BACKEND=filesystem"
            echo "STORAGE_PATH=$STORAGE_DIR/$svc"
            echo "STORAGE_GATEWAY_PATH=/_store/files/$svc/"
            ;;
        s3)
            echo "STORAGE_BACKEND=s3"
            [[ -n "$(storage_gateway_object_store)" ]] && echo "STORAGE_GATEWAY_PATH=/_store/s3/"
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

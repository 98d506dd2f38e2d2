# shellcheck shell=bash
# Picking free TCP ports for the test helpers (with-test-postgres.sh, with-test-seaweedfs.sh,
# with-test-stack.sh, test-stack.sh). Source it; do not run it.
#
#   ports_pick COUNT [OFFSETS]   COUNT free base ports, one a line; every base + each offset
#                                of OFFSETS (default "0") is free too, e.g. OFFSETS="0 10000"
#                                for a SeaweedFS port and its gRPC twin, "0 1 2 3" for a block
#   ports_in_use PORT            true when any TCP socket (listening, connected, TIME_WAIT)
#                                on this machine uses PORT
#   ports_listening PORT         true when something listens on PORT
#   ports_ephemeral_range        "LOW HIGH" of Linux's ephemeral range
#
# Why not port 0 / random ports anywhere: Linux hands ports of its ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default) to outgoing connections
# at any moment, so a port picked there and bound a few seconds later can be taken in
# between (SeaweedFS once died with "failed to listen on grpc port 46362: address already
# in use"). Ports are therefore picked outside that range, read at run time: in
# PORTS_MIN (10000)..LOW-1 and, when the range leaves room, HIGH+1..65535. Below 10000 sit
# the well-known ports and the native stack's own (8080-8084, 8090).
#
# Env: PORTS_MIN (10000), PORTS_AVOID (extra ports never picked; the defaults of
# `make up` are always avoided so a stack started later still finds its ports).

# The fixed defaults of scripts/stack.sh (Postgres, SeaweedFS S3/master/volume/filer and
# their gRPC twins, the SMTP sink): never handed out, even while that stack is down.
PORTS_STACK_DEFAULTS="25432 18333 19333 18080 18888 28333 29333 28080 28888 12525"

ports_ephemeral_range() {
    local low=32768 high=60999 file=/proc/sys/net/ipv4/ip_local_port_range
    if [[ -r "$file" ]]; then
        read -r low high <"$file" || true
    fi
    [[ "$low" =~ ^[0-9]+$ && "$high" =~ ^[0-9]+$ ]] || { low=32768 high=60999; }
    echo "$low $high"
}

# Every local port of a TCP socket in any state, from /proc/net/tcp{,6} (this network
# namespace): the 2nd column is LOCAL_IP:PORT with the port in hex. With LISTEN_ONLY=1,
# only listening sockets (state 0A).
_ports_used() {
    local listen_only="${1:-0}" file sl local_address state rest
    for file in /proc/net/tcp /proc/net/tcp6; do
        [[ -r "$file" ]] || continue
        while read -r sl local_address _ state rest; do
            [[ "$sl" == sl ]] && continue
            [[ "$listen_only" == 1 && "$state" != 0A ]] && continue
            echo $((16#${local_address##*:}))
        done <"$file"
    done
}

# Both fall back to a connection attempt where /proc/net/tcp cannot be read.
# (Not `_ports_used | grep -q`: under pipefail, grep quitting early fails the pipeline.)
_ports_has() {
    local listen_only="$1" port="$2" used
    if [[ -r /proc/net/tcp ]]; then
        used="$(_ports_used "$listen_only")"
        [[ $'\n'"$used"$'\n' == *$'\n'"$port"$'\n'* ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}
ports_listening() { _ports_has 1 "$1"; }
ports_in_use() { _ports_has 0 "$1"; }

ports_pick() {
    local count="$1" offsets="${2:-0}" low high min max_offset=0 offset base port tries ok
    local -A taken=()
    [[ "$count" =~ ^[1-9][0-9]*$ ]] || { echo "ports_pick: COUNT must be a positive number" >&2 && return 1; }
    read -r low high < <(ports_ephemeral_range)
    min="${PORTS_MIN:-10000}"
    for offset in $offsets; do ((offset > max_offset)) && max_offset=$offset; done
    ((65536 - max_offset - min > 0)) || { echo "ports_pick: PORTS_MIN=$min leaves no room for offsets $offsets" >&2 && return 1; }
    # One snapshot of the sockets; the picks are random, so concurrent runs rarely meet.
    for port in $(_ports_used 0) $PORTS_STACK_DEFAULTS ${PORTS_AVOID:-}; do taken[$port]=1; done
    local -a picked=()
    for ((tries = 0; tries < 2000 && ${#picked[@]} < count; tries++)); do
        base=$((min + (RANDOM * 32768 + RANDOM) % (65536 - max_offset - min)))
        ok=1
        for offset in $offsets; do
            port=$((base + offset))
            # Outside the ephemeral range, within 1..65535, and free.
            if ((port > 65535 || (port >= low && port <= high))) || [[ -n "${taken[$port]:-}" ]]; then
                ok=0
                break
            fi
        done
        ((ok)) || continue
        for offset in $offsets; do taken[$((base + offset))]=1; done
        picked+=("$base")
    done
    if ((${#picked[@]} < count)); then
        echo "ports_pick: no $count free port(s) (offsets $offsets) outside the ephemeral range $low-$high (from /proc/sys/net/ipv4/ip_local_port_range) and above $min" >&2
        return 1
    fi
    printf '%s\n' "${picked[@]}"
}

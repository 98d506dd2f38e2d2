#!/usr/bin/env bash
# test-stack.sh: a test of scripts/stack.sh itself (make up / make down), on already-built
# binaries, in a throwaway state folder and on ports of its own, so a developer's stack
# (.stack/, the gateway on 8080, Postgres on 25432, SeaweedFS on 18333...) is left alone.
#
#   1. up, filesystem object store, SCALE_VOTE=2: every instance answers /ready on its
#      port, the gateway balances over both vote instances and answers GET /polls, a
#      recording uploaded through the gateway comes back byte for byte;
#   2. down: nothing of the stack runs any more (no process of its folder, no pid file,
#      every port free);
#   3. up with STORAGE_BACKEND=s3 (a local SeaweedFS), SCALE_VOTE=2: the same checks, the
#      recording going to SeaweedFS; down; nothing left (SeaweedFS included: an older
#      `down` left it running);
#   4. up with s3 again (it used to fail: "port 18333 for SeaweedFS is taken"); down;
#      nothing left.
#
# Bounded: every step has a time limit of its own (stack.sh's STACK_READY_TIMEOUT, curl's
# --max-time, 15 s per stop), and a watchdog ends the run after STACK_TEST_TIMEOUT seconds
# (default 600) all the same. Whatever it started is stopped on any exit (trap), then its
# folder is deleted (STACK_TEST_KEEP=1 keeps it).
#
# Env: STACK_BIN_DIR (default E2E_BIN_DIR from with-test-stack.sh, else the folder of
# `swift build --show-bin-path`; nothing is built), STACK_TEST_TIMEOUT, STACK_TEST_KEEP,
# PG_BINDIR / PG_OS_USER (lib/postgres.sh), WEED (lib/seaweedfs.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# shellcheck source-path=SCRIPTDIR source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=lib/ports.sh
source "$ROOT/scripts/lib/ports.sh"

say() { echo "test-stack: $*"; }
fail() {
    echo "test-stack: FAILED: $*" >&2
    exit 1
}

BIN="${STACK_BIN_DIR:-${E2E_BIN_DIR:-}}"
[[ -n "$BIN" ]] || BIN="$(cd "$ROOT" && swift build --show-bin-path)"
for svc in $SERVICES; do
    [[ -x "$BIN/$svc-service" ]] || fail "no $svc-service in $BIN: build first (swift build)"
done

# A short path: Postgres's socket path must stay under ~107 bytes.
DIR="$(mktemp -d "${TMPDIR:-/tmp}/stack-test.XXXXXX")"
STACK="$ROOT/scripts/stack.sh"

# ---------------------------------------------------------------------------- ports

# pick OFFSETS: PICKED = a base port whose base + each offset is free, outside the
# ephemeral range and away from make up's defaults (lib/ports.sh never hands those out);
# they join PORTS_AVOID, so later picks differ.
PORTS_AVOID=""
pick() {
    local offsets="$1" offset
    PICKED="$(ports_pick 1 "$offsets")" || fail "no free ports"
    for offset in $offsets; do PORTS_AVOID+=" $((PICKED + offset))"; done
}
pick 0 && PG_PORT="$PICKED"
pick 0 && GW_PORT="$PICKED"
pick 0 && SMTP_PORT="$PICKED"
# The services: base .. base+3, and base+1+10 for vote-2.
pick "0 1 2 3 10 11 12 13" && PORT_BASE="$PICKED"
WEED_PORTS=()
for _ in 1 2 3 4; do
    pick "0 10000" && WEED_PORTS+=("$PICKED")
done

export STACK_DIR="$DIR" STACK_BIN_DIR="$BIN" STACK_PG_PORT="$PG_PORT" GATEWAY_PORT="$GW_PORT" \
    STACK_PORT_BASE="$PORT_BASE" STACK_S3_PORT="${WEED_PORTS[0]}" \
    STACK_SEAWEED_MASTER_PORT="${WEED_PORTS[1]}" STACK_SEAWEED_VOLUME_PORT="${WEED_PORTS[2]}" \
    STACK_SEAWEED_FILER_PORT="${WEED_PORTS[3]}" STACK_SMTP_PORT="$SMTP_PORT" STACK_READY_TIMEOUT=90 BCRYPT_COST=4 \
    LOG_LEVEL=info
# Exactly this shape, whatever the caller's environment says.
for svc in $SERVICES; do unset "SCALE_$(upper "$svc")"; done
export SCALE_VOTE=2
unset S3_ENDPOINT STACK_SKIP_SERVICES STACK_SKIP_BUILD GATEWAY_RECORDING_MAX_BODY RECORDING_MAX_BYTES SMTP_URL

# Expected instances and ports (lib/services.sh computes the same from the table; these
# are written out to catch a change there).
declare -A EXPECTED=(
    [auth]="$PORT_BASE"
    [vote]="$((PORT_BASE + 1)) $((PORT_BASE + 11))"
    [recording]="$((PORT_BASE + 2))"
    [feed]="$((PORT_BASE + 3))"
)
ALL_PORTS="$PG_PORT $GW_PORT $SMTP_PORT ${EXPECTED[*]}"
for port in "${WEED_PORTS[@]}"; do ALL_PORTS+=" $port $((port + 10000))"; done

# ---------------------------------------------------------------------------- cleanup

# "PID ARGS" of every process that belongs to the folder: its path in the command line
# (postgres -D, nginx -p/-c, weed -dir) or STACK_INSTANCE (which stack.sh gives the
# services) in the environment. Not our own scripts: their command lines do not name it.
stack_processes() {
    local proc pid entry
    local -a args envs
    for proc in /proc/[0-9]*; do
        pid="${proc#/proc/}"
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        mapfile -d '' args 2>/dev/null <"$proc/cmdline" || continue
        [[ ${#args[@]} -gt 0 ]] || continue
        if [[ "${args[*]}" == *"$DIR/"* ]]; then
            echo "$pid ${args[*]}"
            continue
        fi
        mapfile -d '' envs 2>/dev/null <"$proc/environ" || continue
        for entry in "${envs[@]}"; do
            if [[ "$entry" == "STACK_INSTANCE=$DIR/"* ]]; then
                echo "$pid ${args[*]}"
                break
            fi
        done
    done
    return 0
}

# Every process below PID (children, their children, ...), from the parent pids in /proc.
descendants() {
    local root="$1" stat pid ppid rest
    local -A children=()
    for stat in /proc/[0-9]*/stat; do
        read -r rest 2>/dev/null <"$stat" || continue
        pid="${rest%% *}"
        rest="${rest##*) }"  # after the command name, which may hold spaces
        read -r _ ppid _ <<<"$rest"  # state, ppid, ...
        children[$ppid]+=" $pid"
    done
    local -a queue=("$root")
    while ((${#queue[@]} > 0)); do
        pid="${queue[0]}"
        queue=("${queue[@]:1}")
        for rest in ${children[$pid]:-}; do
            echo "$rest"
            queue+=("$rest")
        done
    done
}

# The watchdog: after STACK_TEST_TIMEOUT seconds, TERM to whatever this script is waiting
# for and then to the script, whose trap stops the stack. (Not timeout(1): it moves the
# run into a process group of its own, out of reach of Ctrl-C.)
MAIN_PID=$$
(
    limit="${STACK_TEST_TIMEOUT:-600}"
    for ((i = 0; i < limit; i++)); do sleep 1; done
    echo "test-stack: FAILED: still running after ${limit}s (STACK_TEST_TIMEOUT)" >&2
    for pid in $(descendants "$MAIN_PID"); do
        [[ "$pid" == "$BASHPID" ]] || kill -TERM "$pid" 2>/dev/null || true
    done
    kill -TERM "$MAIN_PID" 2>/dev/null || true
) &
WATCHDOG_PID=$!

# shellcheck disable=SC2317,SC2329 # invoked via trap
cleanup() {
    local status=$? pid rest
    trap - EXIT INT TERM
    kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
    if ((status != 0)); then
        say "logs of the failed run:" >&2
        tail -n 15 "$DIR"/logs/*.log "$DIR"/nginx/logs/error.log >&2 2>/dev/null || true
    fi
    bash "$STACK" down >"$DIR/cleanup-down.log" 2>&1 || cat "$DIR/cleanup-down.log" >&2
    # Whatever down missed (it is a test of down, after all): only processes of this folder.
    while read -r pid rest; do
        [[ -n "$pid" ]] || continue
        echo "test-stack: killing a leftover: $pid $rest" >&2
        kill -KILL "$pid" 2>/dev/null || true
        status=1
    done < <(stack_processes)
    if [[ "${STACK_TEST_KEEP:-0}" == 1 ]]; then
        say "kept $DIR"
    else
        rm -rf "$DIR"
    fi
    ((status == 0)) && say "passed"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------- checks

http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }

check_running() {
    local backend="$1" svc addresses expected port pid sha_in sha_out token id
    say "status:"
    bash "$STACK" status | sed 's/^/    /'
    for svc in $SERVICES; do
        addresses="$(bash "$STACK" addresses "$svc")" || fail "stack.sh addresses $svc"
        expected=""
        for port in ${EXPECTED[$svc]}; do expected+="127.0.0.1:$port "; done
        [[ "$(echo "$addresses" | tr ' ' '\n' | sort | xargs)" == "$(echo "$expected" | tr ' ' '\n' | sort | xargs)" ]] ||
            fail "$svc runs on '$addresses', expected '$expected'"
        for port in ${EXPECTED[$svc]}; do
            [[ "$(http_status "http://127.0.0.1:$port/ready")" == 200 ]] || fail "$svc on $port: /ready is not 200"
        done
    done
    # The gateway balances over both vote instances.
    for port in ${EXPECTED[vote]}; do
        grep -q "server 127.0.0.1:$port " "$DIR/nginx/gateway.conf" || fail "the gateway's vote upstream lacks port $port"
    done
    [[ "$(http_status "http://127.0.0.1:$GW_PORT/polls")" == 200 ]] || fail "GET /polls through the gateway is not 200"

    # The object store in use, end to end: a recording through the gateway and back.
    pid="$(cat "$DIR/run/recording.pid")"
    # -z: the NUL-separated entries read directly (`tr | grep -q` under pipefail fails when
    # grep quits before tr has written everything, as one CI run saw).
    grep -qxz "STORAGE_BACKEND=$backend" "/proc/$pid/environ" ||
        fail "recording does not run with STORAGE_BACKEND=$backend"
    if [[ "$backend" == s3 ]]; then
        [[ "$(stack_processes)" == *"weed server"*"-dir=$DIR/seaweedfs/"* ]] || fail "SeaweedFS is not running"
    fi
    token="$(curl -fsS --max-time 30 -X POST "http://127.0.0.1:$GW_PORT/auth/signup" -H 'Content-Type: application/json' \
        -d "{\"email\":\"stack-$RANDOM$RANDOM@example.com\",\"password\":\"stack test password\",\"name\":\"Stack\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')" || fail "signup through the gateway"
    python3 -c 'import wave,sys,os
w = wave.open(sys.argv[1], "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
w.writeframes(os.urandom(16000)); w.close()' "$DIR/in.wav"
    id="$(curl -fsS --max-time 30 -X POST "http://127.0.0.1:$GW_PORT/recordings?fileName=stack.wav" \
        -H "Authorization: Bearer $token" -H 'Content-Type: audio/wav' --data-binary "@$DIR/in.wav" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" || fail "upload through the gateway"
    curl -fsS --max-time 30 -o "$DIR/out.wav" -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$GW_PORT/recordings/$id/content" || fail "download through the gateway"
    sha_in="$(sha256sum <"$DIR/in.wav")" sha_out="$(sha256sum <"$DIR/out.wav")"
    [[ "$sha_in" == "$sha_out" ]] || fail "the downloaded recording differs from the upload"
    say "up ($backend): every instance ready on its port, gateway answers, a recording went through $backend and back"
}

check_nothing_left() {
    local procs port busy="" pidfiles
    procs="$(stack_processes)"
    [[ -z "$procs" ]] || fail "still running after down:"$'\n'"$procs"
    pidfiles="$(find "$DIR" -name '*.pid' -not -path "$DIR/pg/*" 2>/dev/null || true)"
    [[ -z "$pidfiles" ]] || fail "pid files left after down: $pidfiles"
    [[ ! -f "$DIR/pg/data/postmaster.pid" ]] || fail "PostgreSQL still has its postmaster.pid"
    for port in $ALL_PORTS; do
        ports_listening "$port" && busy+=" $port"
    done
    [[ -z "$busy" ]] || fail "still listening after down:$busy"
    say "down: no process of $DIR, no pid file, ports free"
}

up() {
    say "up (STORAGE_BACKEND=$1, SCALE_VOTE=2)"
    STORAGE_BACKEND="$1" bash "$STACK" up >"$DIR/up.log" 2>&1 || { tail -n 30 "$DIR/up.log" >&2 && fail "stack.sh up ($1)"; }
}

down() {
    bash "$STACK" down >"$DIR/down.log" 2>&1 || { cat "$DIR/down.log" >&2 && fail "stack.sh down"; }
}

# ---------------------------------------------------------------------------- run

say "folder $DIR, binaries $BIN; ports: postgres $PG_PORT, gateway $GW_PORT, services from $PORT_BASE, SeaweedFS ${WEED_PORTS[*]} (+10000 gRPC)"
up filesystem
check_running filesystem
down
check_nothing_left

up s3
check_running s3
down
check_nothing_left

up s3
check_running s3
down
check_nothing_left

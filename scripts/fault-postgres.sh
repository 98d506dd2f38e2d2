#!/usr/bin/env bash
# fault-postgres.sh: a PostgreSQL cluster of a fault test's own, to stop and start while
# the services under test use it (the shared test cluster must stay up for the others).
#
#   fault-postgres.sh init DIR      initdb in DIR (trust, loopback, durable commits)
#   fault-postgres.sh start DIR PORT
#   fault-postgres.sh stop DIR      fast shutdown (what an orchestrator's SIGTERM does)
#   fault-postgres.sh kill DIR      SIGKILL of every process of the cluster (a crash)
#   fault-postgres.sh freeze DIR    SIGSTOP them: a server that holds connections open and
#                                   never answers (a hung host); `thaw` sends SIGCONT
#   fault-postgres.sh destroy DIR   stop whatever runs and delete DIR
#
# Unlike the shared test cluster, commits are synchronous: the tests check that every
# acknowledged write survives a crash of the server processes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/postgres.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/postgres.sh"

command="${1:?usage: $0 init|start|stop|kill|freeze|thaw|destroy DIR [PORT]}"
dir="${2:?usage: $0 $command DIR}"
bindir="$(pg_find_bindir)"
data="$dir/data"

cluster_pids() {
    # The postmaster's pid, then every process whose parent it is.
    [[ -f "$data/postmaster.pid" ]] || return 0
    local postmaster
    postmaster="$(sed -n 1p "$data/postmaster.pid")"
    [[ -n "$postmaster" ]] || return 0
    echo "$postmaster"
    pgrep -P "$postmaster" || true
}

case "$command" in
    init)
        pg_ensure_os_user
        mkdir -p "$dir/run"
        pg_chown_owner "$dir"
        pg_as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
        pg_as_owner tee -a "$data/postgresql.conf" >/dev/null <<CONF

# --- fault-postgres.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/run'
fsync = off
synchronous_commit = on
max_connections = 100
CONF
        ;;
    start)
        port="${3:?usage: $0 start DIR PORT}"
        pg_as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 30 -o "-p $port" start >/dev/null
        ;;
    stop)
        pg_as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
        ;;
    kill)
        pids="$(cluster_pids | tr '\n' ' ')"
        [[ -n "${pids// /}" ]] && kill -KILL $pids 2>/dev/null || true
        # The next start must not find a stale lock of a process that is gone.
        for _ in $(seq 1 100); do
            alive=0
            for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
            [[ $alive -eq 0 ]] && break
            sleep 0.05
        done
        ;;
    freeze | thaw)
        signal=STOP
        [[ "$command" == thaw ]] && signal=CONT
        pids="$(cluster_pids | tr '\n' ' ')"
        [[ -n "${pids// /}" ]] && kill "-$signal" $pids
        ;;
    destroy)
        [[ -f "$data/postmaster.pid" ]] && { pids="$(cluster_pids | tr '\n' ' ')"; kill -CONT $pids 2>/dev/null || true; }
        if [[ -f "$data/postmaster.pid" ]]; then
            pg_as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
        fi
        rm -rf "$dir"
        ;;
    *)
        echo "usage: $0 init|start|stop|kill|freeze|thaw|destroy DIR [PORT]" >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster.
#
#   scripts/with-test-postgres.sh CMD [ARGS...]
#   e.g. scripts/with-test-postgres.sh swift test --parallel
#
# Creates a cluster in a fresh temp folder (trust auth, loopback only, a free port
# picked now outside the ephemeral range (lib/ports.sh), durability off for speed), exports
#   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres
# runs CMD, then always stops the cluster and deletes the folder. Exits with CMD's
# status. Nothing outside the temp folder is touched, except that when run as root
# the system user PG_OS_USER (default pgtest) is created once if missing, because
# initdb/postgres refuse to run as root.
#
# Env: PG_BINDIR, PG_OS_USER (see scripts/lib/postgres.sh), TMPDIR.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/postgres.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/postgres.sh"
# shellcheck source-path=SCRIPTDIR source=lib/child.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/child.sh"
# shellcheck source-path=SCRIPTDIR source=lib/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

BINDIR="$(pg_find_bindir)"
pg_ensure_os_user

TMP_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/test-pg.XXXXXX")"
PGDATA_DIR="$TMP_ROOT/data"
SOCKET_DIR="$TMP_ROOT/run"
PG_LOG="$TMP_ROOT/postgres.log"

# shellcheck disable=SC2317,SC2329 # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -f "$PGDATA_DIR/postmaster.pid" ]]; then
        # Throwaway data: immediate shutdown is fine and fastest.
        pg_as_owner "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        # Last resort if pg_ctl could not stop it: kill the postmaster by its pid.
        if [[ -f "$PGDATA_DIR/postmaster.pid" ]]; then
            local pid
            pid="$(head -n1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
            if [[ "$pid" =~ ^[0-9]+$ ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
        fi
    fi
    rm -rf "$TMP_ROOT"
    exit "$rc"
}
trap cleanup EXIT

# Forward INT/TERM to CMD (it runs in the background, so signals sent only to this
# script would otherwise wait for CMD), wait for it, then exit -> cleanup.
child_forward_signals

mkdir -p "$SOCKET_DIR"
pg_chown_owner "$TMP_ROOT"
pg_check_owner_access "$TMP_ROOT"

# --no-sync: durability is pointless for a cluster that lives for one run.
if ! pg_as_owner "$BINDIR/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >"$TMP_ROOT/initdb.log" 2>&1; then
    cat "$TMP_ROOT/initdb.log" >&2
    pg_die "initdb failed"
fi

# Only loopback TCP and our private socket dir; no password anywhere (trust).
pg_as_owner tee "$PGDATA_DIR/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF

# Appended settings win over initdb's defaults. The port is passed at start time
# so a bind race can be retried with another one.
pg_as_owner tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null <<EOF

# --- with-test-postgres.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKET_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 1000
EOF

# A random free port outside Linux's ephemeral range (lib/ports.sh); retry with another if
# someone grabs it between our check and the bind.
PORT=""
for _ in $(seq 1 20); do
    candidate="$(ports_pick 1)" || pg_die "no free port for PostgreSQL"
    if pg_as_owner "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 \
        -o "-p $candidate" start >/dev/null 2>&1; then
        PORT="$candidate"
        break
    fi
    if ! grep -qiE 'could not bind|could not create any TCP/IP sockets|address already in use' "$PG_LOG" 2>/dev/null; then
        cat "$PG_LOG" >&2 2>/dev/null || true
        pg_die "PostgreSQL failed to start"
    fi
    : >"$PG_LOG"
done
[[ -n "$PORT" ]] || pg_die "no free port found for PostgreSQL"

# pg_ctl -w already waited; double-check TCP readiness before handing over.
if [[ -x "$BINDIR/pg_isready" ]]; then
    for _ in $(seq 1 50); do
        "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
        sleep 0.2
    done
fi

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "with-test-postgres: PostgreSQL $("$BINDIR/postgres" -V | awk '{print $3}') on 127.0.0.1:$PORT ($TMP_ROOT)" >&2

child_run "$@"

# shellcheck shell=bash
# Helpers shared by with-test-postgres.sh and stack.sh. Source it; do not run it.
#
# Env:
#   PG_BINDIR   use this PostgreSQL bin dir instead of searching for one
#   PG_OS_USER  unprivileged OS user that owns/runs clusters when invoked as root
#               (default: pgtest; created as a system user if missing)

PG_OS_USER="${PG_OS_USER:-pgtest}"

pg_die() {
    echo "error: $*" >&2
    exit 1
}

# shellcheck source-path=SCRIPTDIR source=install.sh
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"

# A directory holding initdb, pg_ctl and postgres. pg_config first (it names the
# server it belongs to), then the newest Debian-style /usr/lib/postgresql/N/bin,
# then whatever initdb is on PATH (resolving symlinks such as /usr/local/bin/initdb).
# None: installed from Debian's packages when possible (install.sh), else an error
# that says what is missing.
pg_find_bindir() {
    if [[ -n "${PG_BINDIR:-}" ]]; then
        [[ -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pg_ctl" ]] ||
            pg_die "PG_BINDIR=$PG_BINDIR has no initdb/pg_ctl"
        echo "$PG_BINDIR"
        return
    fi
    pg_search_bindir && return
    install_pg_server || pg_die "no PostgreSQL server binaries (initdb, pg_ctl) found (see the line above)"
    hash -r
    pg_search_bindir || pg_die "installed postgresql but found no initdb/pg_ctl"
}

pg_search_bindir() {
    local dir candidates
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        # libpq-dev's pg_config may belong to a newer major than the installed server.
        if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return
        fi
    fi
    candidates="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -rV || true)"
    for dir in $candidates; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return
        fi
    done
    if dir="$(command -v initdb 2>/dev/null)"; then
        dir="$(dirname "$(readlink -f "$dir")")"
        if [[ -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return
        fi
    fi
    return 1
}

# psql: the server's own, else the one on PATH (Debian's wrapper), else installed with
# the server.
pg_find_psql() {
    local bindir
    bindir="$(pg_find_bindir)"
    if [[ -x "$bindir/psql" ]]; then
        echo "$bindir/psql"
    else
        command -v psql || pg_die "psql not found (apt-get install postgresql-client)"
    fi
}

# initdb and postgres refuse to run as root, so root delegates to PG_OS_USER.
pg_ensure_os_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
    command -v runuser >/dev/null 2>&1 || pg_die "runuser (util-linux) is required when running as root"
    # Tolerate a concurrent run having created it first.
    useradd -r -M -s /usr/sbin/nologin "$PG_OS_USER" 2>/dev/null ||
        id -u "$PG_OS_USER" >/dev/null 2>&1 ||
        pg_die "could not create system user $PG_OS_USER"
}

# Run a command as the cluster owner: PG_OS_USER when root, else ourselves.
# cd / first so an unreadable cwd (e.g. /root) does not upset initdb/pg_ctl;
# callers therefore pass absolute paths only.
pg_as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# Hand a directory to the cluster owner (no-op unless root).
pg_chown_owner() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    chown -R "$PG_OS_USER:" "$@"
}

# Fail early with a clear message when the owner cannot reach a path
# (e.g. a repo under /root with mode 700 while running as root).
pg_check_owner_access() {
    local path="$1"
    pg_as_owner test -w "$path" ||
        pg_die "$PG_OS_USER cannot write $path (a parent directory is not traversable?)"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
pg_port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# PGDATA/postmaster.pid line 4 holds the port of the running postmaster.
pg_running_port() {
    sed -n 4p "$1/postmaster.pid" 2>/dev/null
}

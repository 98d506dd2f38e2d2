# shellcheck shell=bash
# Part of scripts/stack.sh: the stack's persistent PostgreSQL cluster (one role and one
# database per service). Source it from stack.sh after lib/postgres.sh; it uses stack.sh's
# PG_DIR, PGDATA_DIR, PG_SOCKET_DIR, PG_LOG, PG_PORT, BINDIR, SERVICES, secret and log.
#
#   STACK_DIR/pg/data        cluster (owned by PG_OS_USER when run as root)
#   STACK_DIR/pg/run         unix socket; the only way in for the superuser
#   STACK_DIR/pg/postgres.log

pg_is_running() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] || return 1
    pg_as_owner "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

psql_admin() {
    local psql
    psql="$(pg_find_psql)"
    # Superuser over the private unix socket (peer auth); SQL comes on stdin.
    pg_as_owner "$psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
        -U postgres -d postgres
}

pg_init_cluster() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
    log "creating PostgreSQL cluster in $(rel "$PGDATA_DIR")"
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
        pg_die "PostgreSQL failed to start (see $(rel "$PG_LOG"))"
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

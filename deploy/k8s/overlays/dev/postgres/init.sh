#!/usr/bin/env bash
# Runs once when the compose Postgres volume is created: one role and one database per
# service, each role able to reach only its own database.
set -euo pipefail
for service in auth vote recording feed; do
    var="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password="${!var:-}"
    [[ -n "$password" ]] || continue
    psql -v ON_ERROR_STOP=1 -U postgres -v svc="$service" -v pw="$password" <<'SQL'
CREATE ROLE :"svc" LOGIN PASSWORD :'pw';
CREATE DATABASE :"svc" OWNER :"svc";
REVOKE CONNECT, TEMPORARY ON DATABASE :"svc" FROM PUBLIC;
SQL
done

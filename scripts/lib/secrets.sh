# shellcheck shell=bash
# Part of scripts/stack.sh: the stack's generated secrets. Source it from stack.sh (it uses
# its SECRETS_FILE, ROOT, SERVICES, log and pg_die).
#
# .stack/secrets.env (mode 600) holds JWT_SECRET, SERVICE_TOKEN_SECRET, <SERVICE>_DB_PASSWORD
# per service and, once SeaweedFS ran, S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY.

# Read one key from secrets.env without sourcing it (the file is data, not code).
secret() {
    sed -n "s/^$1=//p" "$SECRETS_FILE" | tail -n1
}

# Generate each missing secret once; existing ones are never rotated, so the
# cluster's role passwords and issued tokens stay valid across `up`s.
ensure_secrets() {
    local key svc
    command -v openssl >/dev/null 2>&1 || pg_die "openssl is required to generate secrets"
    (umask 077 && touch "$SECRETS_FILE")
    chmod 600 "$SECRETS_FILE"
    ensure_secret JWT_SECRET 32
    ensure_secret SERVICE_TOKEN_SECRET 32
    for svc in $SERVICES; do
        key="$(upper "$svc")_DB_PASSWORD"
        ensure_secret "$key" 24
    done
}

ensure_secret() {
    local key="$1" bytes="$2"
    grep -q "^$key=" "$SECRETS_FILE" && return 0
    echo "$key=$(openssl rand -hex "$bytes")" >>"$SECRETS_FILE"
    log "generated $key in $(rel "$SECRETS_FILE")"
}

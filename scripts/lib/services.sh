# shellcheck shell=bash
# The services, once: the table below is the one list of services, ports and per-service
# variables for scripts/stack.sh (make up), scripts/with-test-stack.sh (make test),
# scripts/fuzz-openapi.sh and scripts/bench.sh; scripts/check-services-table.sh holds it
# against compose.yaml. Source it; do not run it.
#
# Adding a service or a variable: one row or one word here, plus its entry in compose.yaml
# (and, for a service, its upstream and locations in deploy/nginx/gateway.conf.template).
#
# Columns, separated by '|':
#   service    name (lower case, no '-': instance n > 1 of vote is "vote-n"), in start order
#   port       default HTTP port of its first instance (make up; compose uses the same)
#   outbox     yes: a target of auth's outbox (OUTBOX_TARGETS), told of user events
#   storage    yes: keeps bytes in the object store (STORAGE_BACKEND and S3_* / STORAGE_PATH,
#              from the runner's storage_env)
#   variables  what it takes beyond the common ones (SERVICES_COMMON_VARS), each given by
#              every runner and set in its compose environment:
#                NAME=DEFAULT   $NAME from the caller's environment, else DEFAULT
#                <SERVICE>_URL  base URL of that service's first instance (e.g. AUTH_URL)
#                OUTBOX_TARGETS name=URL|URL,... of every instance of every outbox target
#                NAME           $NAME from the caller's environment (it must be set)
#   knobs      optional tuning variables, handed over only when set in the caller's
#              environment (each has a default in the service; compose need not set them);
#              one ending in "_" is a prefix: every variable starting with it (OIDC_)
SERVICES_TABLE='
auth      | 8081 | no  | no  | BCRYPT_COST=12 OUTBOX_TARGETS | USER_DELETION_REDELIVERY_SECONDS LOGIN_THROTTLE_FREE_FAILURES LOGIN_THROTTLE_BASE_DELAY_SECONDS LOGIN_THROTTLE_MAX_DELAY_SECONDS LOGIN_THROTTLE_WINDOW_SECONDS SMTP_URL SMTP_CA_FILE SMTP_TIMEOUT_SECONDS MAIL_FROM MAIL_APP_NAME PUBLIC_BASE_URL MAIL_TEMPLATES_DIR EMAIL_VERIFY_TOKEN_TTL_SECONDS PASSWORD_RESET_TOKEN_TTL_SECONDS MAIL_RETRY_BASE_SECONDS MAIL_RETRY_MAX_SECONDS MAIL_GIVE_UP_SECONDS MAIL_POLL_INTERVAL_SECONDS OIDC_
vote      | 8082 | yes | no  |                               |
recording | 8083 | yes | yes |                               | RECORDING_MAX_BYTES RECORDING_TRASH_RETENTION_SECONDS RECORDING_PURGE_INTERVAL_SECONDS RECORDING_SWEEP_INTERVAL_SECONDS RECORDING_ORPHAN_GRACE_SECONDS RECORDING_UPLOADS_PER_HOUR RECORDING_UPLOAD_BURST RECORDING_LINK_TTL_SECONDS
feed      | 8084 | yes | yes | AUTH_URL                      | AUTH_TIMEOUT_MS FEED_SWEEP_INTERVAL_SECONDS FEED_ORPHAN_GRACE_SECONDS FEED_POSTS_PER_HOUR FEED_POST_BURST
'

# Every service takes these; each runner's common_env gives all of them.
SERVICES_COMMON_VARS="APP_ENV HTTP_HOST HTTP_PORT LOG_LEVEL DATABASE_URL JWT_SECRET SERVICE_TOKEN_SECRET CORS_ALLOWED_ORIGINS"
# shellcheck disable=SC2034 # read by scripts/check-services-table.sh
# What a storage service takes in compose (S3; natively the filesystem store may be used
# instead: STORAGE_BACKEND=filesystem and STORAGE_PATH).
SERVICES_STORAGE_VARS="STORAGE_BACKEND S3_ENDPOINT S3_REGION S3_BUCKET S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY STORAGE_GATEWAY_PATH"

# The table's first port; SERVICE_PORT_BASE moves all of them (stack.sh: STACK_PORT_BASE).
SERVICES_DEFAULT_BASE=8081
SERVICE_PORT_BASE="${SERVICE_PORT_BASE:-$SERVICES_DEFAULT_BASE}"
# Ports a runner picked itself, per instance (with-test-stack.sh); otherwise an instance's
# port is computed (instance_port).
declare -gA INSTANCE_PORTS=()

SERVICES=""
declare -gA SERVICE_TABLE_PORT=() SERVICE_OUTBOX=() SERVICE_STORAGE=() SERVICE_VARS=() SERVICE_KNOBS=()

services_die() {
    echo "error: $*" >&2
    exit 1
}

# Words of a cell, trimmed and single-spaced (no subshells: this runs at every source).
_services_words() {
    local -n _cell="$1"
    local -a words
    read -r -a words <<<"$_cell" || true
    _cell="${words[*]}"
}

_services_parse() {
    local svc port outbox storage vars knobs
    while IFS='|' read -r svc port outbox storage vars knobs; do
        _services_words svc
        [[ -z "$svc" ]] && continue
        _services_words port && _services_words outbox && _services_words storage
        _services_words vars && _services_words knobs
        [[ "$svc" =~ ^[a-z][a-z0-9]*$ ]] || services_die "services table: bad service name '$svc'"
        [[ "$port" =~ ^[0-9]+$ ]] || services_die "services table: bad port '$port' for $svc"
        [[ "$outbox" =~ ^(yes|no)$ && "$storage" =~ ^(yes|no)$ ]] || services_die "services table: outbox/storage of $svc must be yes or no"
        SERVICES+="${SERVICES:+ }$svc"
        SERVICE_TABLE_PORT[$svc]="$port"
        SERVICE_OUTBOX[$svc]="$outbox"
        SERVICE_STORAGE[$svc]="$storage"
        SERVICE_VARS[$svc]="$vars"
        SERVICE_KNOBS[$svc]="$knobs"
    done <<<"$SERVICES_TABLE"
    [[ -n "$SERVICES" ]] || services_die "services table is empty"
    return 0
}
_services_parse

upper() { echo "$1" | tr '[:lower:]' '[:upper:]'; }

service_known() { [[ -n "${SERVICE_TABLE_PORT[$1]:-}" ]]; }
service_is_outbox_target() { [[ "${SERVICE_OUTBOX[$1]:-}" == yes ]]; }
service_uses_storage() { [[ "${SERVICE_STORAGE[$1]:-}" == yes ]]; }

# HTTP port of a service's first instance, moved by SERVICE_PORT_BASE.
service_port() {
    service_known "$1" || services_die "no service '$1' in scripts/lib/services.sh"
    [[ "$SERVICE_PORT_BASE" =~ ^[0-9]+$ ]] || services_die "the port base must be a number, not '$SERVICE_PORT_BASE'"
    echo $((SERVICE_PORT_BASE + ${SERVICE_TABLE_PORT[$1]} - SERVICES_DEFAULT_BASE))
}

# Number of instances: SCALE_<SERVICE> (SCALE_VOTE=2 ...), default 1.
service_scale() {
    local var count
    var="SCALE_$(upper "$1")"
    count="${!var:-1}"
    [[ "$count" =~ ^[1-9][0-9]*$ ]] || services_die "$var must be a positive number, not '$count'"
    echo "$count"
}

# Instances of a service: "vote", or "vote vote-2 ..." with SCALE_VOTE=N. Instance n
# listens on the service's port + 10*(n-1) (unless the runner picked ports); the gateway
# balances across them.
instances_of() {
    local svc="$1" count n
    count="$(service_scale "$svc")"
    echo "$svc"
    for ((n = 2; n <= count; n++)); do echo "$svc-$n"; done
}

all_instances() {
    local svc
    for svc in $SERVICES; do instances_of "$svc"; done
}

instance_service() { echo "${1%%-*}"; }

instance_number() {
    local inst="$1"
    if [[ "$inst" == *-* ]]; then echo "${inst##*-}"; else echo 1; fi
}

# True for "vote", "vote-2", ...: a pid or log file name that belongs to an instance (and
# not, say, to SeaweedFS).
is_instance_name() {
    local inst="$1"
    [[ "$inst" =~ ^[a-z][a-z0-9]*(-[1-9][0-9]*)?$ ]] && service_known "$(instance_service "$inst")"
}

instance_port() {
    local inst="$1" base
    if [[ -n "${INSTANCE_PORTS[$inst]:-}" ]]; then
        echo "${INSTANCE_PORTS[$inst]}"
        return
    fi
    base="$(service_port "$(instance_service "$inst")")"
    echo $((base + 10 * ($(instance_number "$inst") - 1)))
}

instance_url() { echo "http://127.0.0.1:$(instance_port "$1")"; }

# "127.0.0.1:port ..." of a service's instances, for the gateway's upstream.
service_addresses() {
    local inst out=""
    for inst in $(instances_of "$1"); do out+="${out:+ }127.0.0.1:$(instance_port "$inst")"; done
    echo "$out"
}

# Where auth delivers user events: every instance of every outbox target, "|"-separated
# (auth tries them in turn, so one instance down delays nothing).
outbox_targets() {
    local svc inst urls out=""
    for svc in $SERVICES; do
        service_is_outbox_target "$svc" || continue
        urls=""
        for inst in $(instances_of "$svc"); do urls+="${urls:+|}$(instance_url "$inst")"; done
        out+="${out:+,}$svc=$urls"
    done
    echo "$out"
}

# The VAR=VALUE lines of a service's own variables and of its knobs that are set.
service_vars_env() {
    local svc="$1" spec name other
    for spec in ${SERVICE_VARS[$svc]}; do
        name="${spec%%=*}"
        if [[ "$name" == OUTBOX_TARGETS ]]; then
            echo "OUTBOX_TARGETS=$(outbox_targets)"
            continue
        fi
        if [[ "$name" == *_URL ]]; then
            other="$(echo "${name%_URL}" | tr '[:upper:]' '[:lower:]')"
            if service_known "$other"; then
                echo "$name=$(instance_url "$other")"
                continue
            fi
        fi
        if [[ "$spec" == *=* ]]; then
            echo "$name=${!name:-${spec#*=}}"
        else
            [[ -n "${!name:-}" ]] || services_die "$svc needs $name (scripts/lib/services.sh): set it"
            echo "$name=${!name}"
        fi
    done
    for name in ${SERVICE_KNOBS[$svc]}; do
        for var in $(knob_variables "$name"); do
            [[ -n "${!var:-}" ]] && echo "$var=${!var}"
        done
    done
    return 0
}

# knob_variables KNOB: the variable a knob names; a knob that ends in "_" (OIDC_) is a
# prefix and names every variable of this shell that starts with it (each provider of
# social sign-in brings its own OIDC_<NAME>_* settings).
knob_variables() {
    if [[ "$1" == *_ ]]; then compgen -v "$1" || true; else echo "$1"; fi
}

# service_environment INSTANCE: every VAR=VALUE line the instance starts with. The runner
# defines common_env INSTANCE (SERVICES_COMMON_VARS, and whatever else it hands to all)
# and storage_env SERVICE (for storage services).
service_environment() {
    local inst="$1" svc out var
    svc="$(instance_service "$inst")"
    out="$(common_env "$inst")" || return 1
    if service_uses_storage "$svc"; then
        out+=$'\n'"$(storage_env "$svc")" || return 1
    fi
    out+=$'\n'"$(service_vars_env "$svc")" || return 1
    for var in $SERVICES_COMMON_VARS; do
        [[ $'\n'"$out" == *$'\n'"$var="* ]] || services_die "common_env gives no $var for $inst"
    done
    grep -v '^$' <<<"$out"
}

# For scripts/check-services-table.sh: one line per service,
# "service port outbox storage var,var,..." (names only).
services_dump() {
    local svc spec names
    for svc in $SERVICES; do
        names=""
        for spec in ${SERVICE_VARS[$svc]}; do names+="${names:+,}${spec%%=*}"; done
        echo "$svc ${SERVICE_TABLE_PORT[$svc]} ${SERVICE_OUTBOX[$svc]} ${SERVICE_STORAGE[$svc]} ${names:--}"
    done
}

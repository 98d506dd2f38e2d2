#!/usr/bin/env bash
# social-demo.sh: a local OpenID provider, to try social sign-in (POST /auth/social/demo, or
# "Continue with Demo" in the web app) against `make up` without an account at a real
# provider. Needs bash, python3 (standard library only), openssl and curl, as the stack
# itself does.
#
#   scripts/social-demo.sh start      an RSA 2048 key (made once), the provider on
#                                     127.0.0.1:DEMO_OIDC_PORT (scripts/lib/oidc_provider.py:
#                                     discovery, JWKS and a sign-in page for the web app), and
#                                     every running auth instance restarted with it configured:
#                                     OIDC_PROVIDERS gets "demo" (other providers stay),
#                                     OIDC_DEMO_ISSUER=http://127.0.0.1:PORT,
#                                     OIDC_DEMO_CLIENT_IDS=demo-app
#   scripts/social-demo.sh token EMAIL [NAME]
#                                     a fresh ID token for EMAIL on stdout (RS256, 10 min;
#                                     sub derived from the e-mail, so the same person each
#                                     time; without NAME auth names the account after the
#                                     e-mail's local part)
#   scripts/social-demo.sh signin EMAIL [NAME]
#                                     such a token POSTed to API/auth/social/demo: the status
#                                     on stderr, the JSON (a session on 200/201) on stdout;
#                                     exits 1 unless 2xx
#   scripts/social-demo.sh stop       the provider stopped, auth restarted without it
#
# Everything lives in STACK_DIR/oidc-demo/ (mode 700): key.pem (the private key, 600),
# public.pem, provider.pid, provider.log. `make clean` deletes the folder: run `stop` first.
# The tokens are only as secret as key.pem; auth trusts this provider only while it is
# configured, so `stop` when done. Its sign-in page (the authorization endpoint its discovery
# names, which auth passes on to the web app) asks for an e-mail and a name, no password,
# and takes any: like `token`, it vouches for anyone, by design; it also takes any redirect
# URI (a real provider sends only to the ones registered for the client).
#
# Env:
#   STACK_DIR                 the stack's folder, as for scripts/stack.sh (default .stack)
#   DEMO_OIDC_PORT            the provider's port on 127.0.0.1 (default 18999)
#   API                       the gateway for `signin` (default http://localhost:8080)
#   DEMO_OIDC_NONCE           when set, `token` puts it in the token as `nonce` and `signin`
#                             sends it too (as an app would, to tie the token to its request)
#   DEMO_OIDC_EMAIL_VERIFIED  `token`'s email_verified (default true; false shows how auth
#                             refuses to link an unproven e-mail to an existing account)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# For sw_close_inherited_fds and sw_stop (the stack's own process helpers) and, through
# it, lib/ports.sh's ports_listening.
# shellcheck source-path=SCRIPTDIR source=lib/seaweedfs.sh
source "$ROOT/scripts/lib/seaweedfs.sh"

# The same folder as scripts/stack.sh resolves (relative to the current directory).
STACK_DIR="${STACK_DIR:-$ROOT/.stack}"
[[ "$STACK_DIR" == /* ]] || STACK_DIR="$PWD/$STACK_DIR"
STACK_DIR="${STACK_DIR%/}"
DEMO_DIR="$STACK_DIR/oidc-demo"
KEY="$DEMO_DIR/key.pem"
PUBLIC_KEY="$DEMO_DIR/public.pem"
PROVIDER="$ROOT/scripts/lib/oidc_provider.py"
PID_FILE="$DEMO_DIR/provider.pid"
LOG_FILE="$DEMO_DIR/provider.log"
# The issuer the provider was started with: `token` must use the same one even when
# DEMO_OIDC_PORT has changed since.
ISSUER_FILE="$DEMO_DIR/issuer"
PORT="${DEMO_OIDC_PORT:-18999}"
CLIENT_ID="demo-app"
PROVIDER_NAME="demo"
API="${API:-http://localhost:8080}"
TOKEN_LIFETIME=600

log() { echo "social-demo: $*"; }

die() {
    echo "social-demo: error: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start|stop|token EMAIL [NAME]|signin EMAIL [NAME]" >&2
    exit 2
}

# A path as shown to the user: relative to the repo when inside it.
rel() { echo "${1#"$ROOT"/}"; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is needed ($2)"
}

# ------------------------------------------------------------------------- the key

# The key is made once and kept: auth caches the JWKS, and tokens minted before a restart
# of the provider stay valid.
ensure_key() {
    local out
    mkdir -p "$DEMO_DIR"
    chmod 700 "$DEMO_DIR"
    if [[ ! -s "$KEY" ]]; then
        # -quiet hides the progress dots; older openssl lacks it, so it is tried first.
        out="$( (umask 077 && { openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEY" 2>&1 ||
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEY" 2>&1; }))" ||
            { rm -f "$KEY"; die "openssl could not make an RSA key: $out"; }
        rm -f "$PUBLIC_KEY"
        log "made an RSA 2048 key: $(rel "$KEY")"
    else
        log "using the key made earlier: $(rel "$KEY")"
    fi
    if [[ ! -s "$PUBLIC_KEY" ]]; then
        out="$(openssl rsa -in "$KEY" -pubout -out "$PUBLIC_KEY" 2>&1)" || die "openssl could not read $(rel "$KEY"): $out"
    fi
}

# The public key as a JWK (one line of JSON): n and e as openssl prints them (hex, decimal),
# base64url-encoded without padding; kid is the key's RFC 7638 thumbprint, so it stays the
# same for the same key.
public_jwk() {
    local modulus exponent
    [[ -s "$PUBLIC_KEY" ]] || die "no key in $(rel "$DEMO_DIR") yet: run \`$0 start\` first"
    modulus="$(openssl rsa -pubin -in "$PUBLIC_KEY" -noout -modulus 2>/dev/null)" || die "openssl could not read $(rel "$PUBLIC_KEY")"
    modulus="${modulus#Modulus=}"
    exponent="$(openssl rsa -pubin -in "$PUBLIC_KEY" -noout -text 2>/dev/null | sed -n 's/^Exponent: \([0-9][0-9]*\).*/\1/p')"
    [[ "$modulus" =~ ^[0-9A-Fa-f]+$ && "$exponent" =~ ^[0-9]+$ ]] || die "unexpected openssl output for $(rel "$PUBLIC_KEY")"
    python3 - "$modulus" "$exponent" <<'PY'
import base64, hashlib, json, sys

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def unsigned(value: int) -> bytes:
    # Big-endian, no leading zero byte (RFC 7518 6.3.1).
    return value.to_bytes((value.bit_length() + 7) // 8, "big")

n = b64url(unsigned(int(sys.argv[1], 16)))
e = b64url(unsigned(int(sys.argv[2])))
thumbprint = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"), sort_keys=True)
kid = b64url(hashlib.sha256(thumbprint.encode()).digest())
print(json.dumps({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}))
PY
}

# ------------------------------------------------------------------------- the provider

# True when PID is this folder's provider (a reused pid, or a zombie, is not): the shared
# provider with this folder's key, or the provider.py an older version of this script wrote.
provider_is() {
    local -a args
    mapfile -d "" args 2>/dev/null <"/proc/$1/cmdline" || return 1
    [[ " ${args[*]} " == *" $PROVIDER "*" --key $KEY "* || " ${args[*]} " == *" $DEMO_DIR/provider.py --dir "* ]]
}

provider_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && provider_is "$pid" || return 1
    echo "$pid"
}

provider_stop() {
    local pid
    if pid="$(provider_pid)"; then
        sw_stop "$pid" 5
        log "provider stopped (pid $pid)"
    else
        log "no provider running from $(rel "$DEMO_DIR")"
    fi
    rm -f "$PID_FILE" "$ISSUER_FILE"
}

provider_start() {
    # The issuer is exactly the configured OIDC_DEMO_ISSUER (the provider serves it as such).
    local issuer="http://127.0.0.1:$PORT" jwk pid deadline
    jwk="$(public_jwk)"
    # A provider of an earlier start (maybe on another port) makes way.
    if pid="$(provider_pid)"; then
        sw_stop "$pid" 5
        log "provider of an earlier start stopped (pid $pid)"
    fi
    # What an older version of this script wrote here (its own provider and documents).
    rm -f "$PID_FILE" "$ISSUER_FILE" "$DEMO_DIR/provider.py" "$DEMO_DIR/jwks.json" "$DEMO_DIR/discovery.json"
    ports_listening "$PORT" && die "port $PORT is taken (DEMO_OIDC_PORT moves the provider)"
    echo "--- $(date '+%Y-%m-%d %H:%M:%S') starting the demo OpenID provider on $issuer" >>"$LOG_FILE"
    # Detached as the stack's own processes are (lib/instances.sh, launch_service): it
    # outlives this shell and holds none of its descriptors.
    (sw_close_inherited_fds && exec setsid python3 -u "$PROVIDER" --port "$PORT" --client-id "$CLIENT_ID" --key "$KEY" >>"$LOG_FILE" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$PID_FILE"
    deadline=$((SECONDS + 10))
    until curl -fsS -o /dev/null --max-time 2 "$issuer/.well-known/openid-configuration" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
            tail -n 20 "$LOG_FILE" >&2 || true
            sw_stop "$pid" 2
            rm -f "$PID_FILE"
            die "the provider did not start (see $(rel "$LOG_FILE"))"
        fi
        sleep 0.1
    done
    echo "$issuer" >"$ISSUER_FILE"
    log "provider started (pid $pid) on $issuer, log in $(rel "$LOG_FILE")"
    log "  discovery: $issuer/.well-known/openid-configuration"
    log "  JWKS:      $issuer/jwks (kid $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["kid"])' "$jwk"))"
    log "  sign-in:   $issuer/authorize (the web app's \"Continue with Demo\" leads there)"
}

# ------------------------------------------------------------------------- auth

# The running auth instances (auth, auth-2, ...), from the stack's pid files, checked as
# lib/instances.sh's service_pid does: alive, not a zombie, an auth-service.
auth_instances() {
    local file inst pid state args
    for file in "$STACK_DIR/run/auth.pid" "$STACK_DIR/run/auth"-*.pid; do
        [[ -f "$file" ]] || continue
        inst="$(basename "$file" .pid)"
        pid="$(cat "$file")"
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        state="$(ps -p "$pid" -o stat= 2>/dev/null)" || continue
        [[ "$state" == Z* ]] && continue
        args="$(ps -p "$pid" -o args= 2>/dev/null)" || continue
        [[ "$args" == *auth-service* ]] && echo "$inst $pid"
    done
    return 0
}

# The providers an instance runs with, demo left out: other providers (say google, set
# before `make up`) must survive `start` and `stop`.
other_providers() {
    local pid="$1" current name out=""
    current="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^OIDC_PROVIDERS=//p')" || current=""
    local -a names=()
    IFS=, read -r -a names <<<"$current"
    for name in "${names[@]}"; do
        name="$(echo "$name" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')"
        [[ -z "$name" || "$name" == "$PROVIDER_NAME" || ",$out," == *",$name,"* ]] && continue
        out+="${out:+,}$name"
    done
    echo "$out"
}

# restart_auth with|without: every running auth instance through `stack.sh restart`, which
# keeps the rest of its environment (VAR= removes VAR).
restart_auth() {
    local mode="$1" instances inst pid others providers
    local -a vars
    instances="$(auth_instances)"
    if [[ -z "$instances" ]]; then
        if [[ "$mode" == with ]]; then
            die "auth is not running in $(rel "$STACK_DIR") (no live run/auth*.pid): \`make up\` first, then \`$0 start\` again (the provider keeps running until \`$0 stop\`; STACK_DIR must be the stack's)"
        fi
        log "auth is not running in $(rel "$STACK_DIR"): nothing to reconfigure"
        return 0
    fi
    while read -r inst pid; do
        others="$(other_providers "$pid")"
        if [[ "$mode" == with ]]; then
            providers="${others:+$others,}$PROVIDER_NAME"
            # JWKS_URL emptied: an old one would bypass the discovery of this issuer.
            vars=("OIDC_PROVIDERS=$providers" "OIDC_DEMO_ISSUER=$(cat "$ISSUER_FILE")" "OIDC_DEMO_CLIENT_IDS=$CLIENT_ID" "OIDC_DEMO_JWKS_URL=")
        else
            # Empty values remove the variables; OIDC_PROVIDERS keeps any other provider.
            vars=("OIDC_PROVIDERS=$others" "OIDC_DEMO_ISSUER=" "OIDC_DEMO_CLIENT_IDS=" "OIDC_DEMO_JWKS_URL=")
        fi
        log "restarting $inst: scripts/stack.sh restart $inst ${vars[*]}"
        STACK_DIR="$STACK_DIR" bash "$ROOT/scripts/stack.sh" restart "$inst" "${vars[@]}" </dev/null ||
            die "the restart of $inst failed (see $(rel "$STACK_DIR/logs/$inst.log"))"
    done <<<"$instances"
}

# ------------------------------------------------------------------------- tokens

# mint EMAIL [NAME]: header.payload.signature
mint() {
    local email="$1" name="${2:-}" issuer jwk input signature
    [[ -n "$email" ]] || usage
    [[ -s "$KEY" ]] || die "no key in $(rel "$DEMO_DIR") yet: run \`$0 start\` first"
    [[ "${DEMO_OIDC_EMAIL_VERIFIED:-true}" == true || "${DEMO_OIDC_EMAIL_VERIFIED:-true}" == false ]] ||
        die "DEMO_OIDC_EMAIL_VERIFIED must be true or false, not '$DEMO_OIDC_EMAIL_VERIFIED'"
    jwk="$(public_jwk)"
    if [[ -s "$ISSUER_FILE" ]]; then
        issuer="$(cat "$ISSUER_FILE")"
    else
        # Not running: the issuer a `start` with this environment would have.
        issuer="http://127.0.0.1:$PORT"
    fi
    input="$(python3 - "$jwk" "$issuer" "$CLIENT_ID" "$email" "$name" "${DEMO_OIDC_EMAIL_VERIFIED:-true}" \
        "${DEMO_OIDC_NONCE:-}" "$TOKEN_LIFETIME" <<'PY'
import base64, hashlib, json, sys, time

jwk, issuer, audience, email, name, verified, nonce, lifetime = sys.argv[1:]

def segment(value) -> str:
    data = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

now = int(time.time())
claims = {
    "iss": issuer,
    "aud": audience,
    # The same person for the same e-mail (case and spaces aside), as a real provider's
    # stable subject would be.
    "sub": hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32],
    "email": email,
    "email_verified": verified == "true",
    "iat": now,
    "exp": now + int(lifetime),
}
if name:
    claims["name"] = name
if nonce:
    claims["nonce"] = nonce
header = {"alg": "RS256", "typ": "JWT", "kid": json.loads(jwk)["kid"]}
print(segment(header) + "." + segment(claims))
PY
    )" || die "could not build the token"
    # JWS RS256 = RSASSA-PKCS1-v1_5 with SHA-256 over "header.payload", base64url.
    signature="$(printf '%s' "$input" | openssl dgst -sha256 -sign "$KEY" -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=\n')"
    [[ -n "$signature" ]] || die "openssl could not sign with $(rel "$KEY")"
    echo "$input.$signature"
}

cmd_signin() {
    local email="${1:-}" name="${2:-}" token body status url="${API%/}/auth/social/$PROVIDER_NAME"
    [[ -n "$email" ]] || usage
    need curl "apt-get install curl"
    token="$(mint "$email" "$name")"
    body="$(python3 -c 'import json,sys; print(json.dumps({k: v for k, v in (("idToken", sys.argv[1]), ("nonce", sys.argv[2])) if v}))' \
        "$token" "${DEMO_OIDC_NONCE:-}")"
    local response
    response="$(mktemp "${TMPDIR:-/tmp}/social-demo.XXXXXX")"
    status="$(curl -sS -o "$response" -w '%{http_code}' -X POST "$url" -H 'Content-Type: application/json' --data-binary "$body")" ||
        { rm -f "$response"; die "no answer from $url (is the stack up? make up; API moves it)"; }
    echo "POST $url ($email): HTTP $status" >&2
    cat "$response"
    [[ -s "$response" && "$(tail -c1 "$response")" != "" ]] && echo
    rm -f "$response"
    case "$status" in
        201) echo "-> a new account (no account had this e-mail), signed in" >&2 ;;
        200) echo "-> signed in: this demo identity was known, or is now linked to the account with this e-mail (both verified; a notice mail says so)" >&2 ;;
        409) echo "-> an account has this e-mail, but its address (or the token's: DEMO_OIDC_EMAIL_VERIFIED) is not verified: open the link of its sign-up mail (make mail), then sign in here again to link" >&2 ;;
        404) echo "-> auth does not know the provider: \`$0 start\` configures it" >&2 ;;
        401) echo "-> auth refused the token; the reason is in auth's log (make logs)" >&2 ;;
        503) echo "-> auth cannot fetch the provider's keys: is it running? (\`$0 start\`)" >&2 ;;
    esac
    [[ "$status" == 2* ]]
}

# ------------------------------------------------------------------------- commands

need python3 "apt-get install python3"
need openssl "apt-get install openssl"

case "${1:-}" in
    start)
        need curl "apt-get install curl"
        if [[ ! "$PORT" =~ ^[1-9][0-9]{0,4}$ ]] || ((PORT > 65535)); then
            die "DEMO_OIDC_PORT must be a port number, not '$PORT'"
        fi
        ensure_key
        provider_start
        restart_auth with
        log "auth accepts demo tokens now: $0 signin ada@example.com Ada, or \"Continue with Demo\" on the web app's sign-in page"
        ;;
    stop)
        provider_stop
        restart_auth without
        ;;
    token)
        shift
        mint "${1:-}" "${2:-}"
        ;;
    signin)
        shift
        cmd_signin "${1:-}" "${2:-}"
        ;;
    *) usage ;;
esac

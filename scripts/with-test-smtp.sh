#!/usr/bin/env bash
# Run a command against a throwaway SMTP server: scripts/lib/smtp_sink.py (aiosmtpd, from
# PyPI into a venv of its own: lib/install.sh), which stores every message it accepts.
#
#   scripts/with-test-smtp.sh CMD [ARGS...]
#   e.g. scripts/with-test-postgres.sh scripts/with-test-smtp.sh swift test
#
# In a fresh temp folder: a self-signed certificate for localhost and 127.0.0.1 (openssl,
# valid two days), then the server on loopback with two free ports picked now outside the
# ephemeral range (lib/ports.sh): one plain with STARTTLS offered (not required), one with
# implicit TLS; AUTH PLAIN and LOGIN as user `mailer` with a random password, only once
# the session is encrypted, and required before MAIL FROM (530 otherwise). It waits until
# the server greets (at most SMTP_START_TIMEOUT seconds, default 30), exports
#   TEST_SMTP_URL=smtp://mailer:PASSWORD@127.0.0.1:PORT?tls=starttls
#   TEST_SMTPS_URL=smtps://mailer:PASSWORD@127.0.0.1:TLS_PORT
#   TEST_SMTP_HOST=127.0.0.1  TEST_SMTP_PORT=PORT  TEST_SMTP_TLS_PORT=TLS_PORT
#   TEST_SMTP_USER=mailer     TEST_SMTP_PASSWORD=PASSWORD (hex, nothing to escape in a URL)
#   TEST_SMTP_CA_FILE=...     the server's certificate (PEM), to trust as the only root
#   TEST_SMTP_DIR=...         where the messages land: <n>.eml and <n>.json (smtp_sink.py)
#   TEST_MAIL_TO_JSON="PYTHON SCRIPT"  a command line (two absolute paths, split on the
#                             space) printing an .eml as JSON: mail_to_json.py FILE.eml
#   TEST_SMTP_SINK="PYTHON SCRIPT"     the same for smtp_sink.py, for a test that needs a
#                             server of its own (one to stop and start again, say)
#   TEST_SMTP_LOG=...         the server's log, one line per event
# runs CMD, then always stops the server and deletes the folder. Exits with CMD's status.
# One server serves a whole `make test`: tests tell their messages apart by recipient, and
# provoke failures by recipient too (tempfail<N>-, busy<N>-, close-, reject-: see
# lib/smtp_sink.py), whose counts are per exact address, so each test uses fresh ones.
#
# Env: AIOSMTPD_PYTHON (lib/install.sh), SMTP_START_TIMEOUT, TMPDIR.
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# lib/seaweedfs.sh for its process helpers (sw_close_inherited_fds, sw_stop; stack.sh's
# instances use them too); it sources lib/install.sh and lib/ports.sh.
# shellcheck source-path=SCRIPTDIR source=lib/seaweedfs.sh
source "$SCRIPTS/lib/seaweedfs.sh"
# shellcheck source-path=SCRIPTDIR source=lib/child.sh
source "$SCRIPTS/lib/child.sh"
# shellcheck source-path=SCRIPTDIR source=lib/smtp.sh
source "$SCRIPTS/lib/smtp.sh"

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

die() {
    echo "with-test-smtp: error: $*" >&2
    exit 1
}

PYTHON="$(install_find_aiosmtpd)" || die "aiosmtpd is needed for the test SMTP server (see the line above)"
SINK="$SCRIPTS/lib/smtp_sink.py"
MAIL_TO_JSON="$SCRIPTS/lib/mail_to_json.py"
TMP_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/test-smtp.XXXXXX")"
SMTP_PID=""
LOG="$TMP_ROOT/smtp.log"

# shellcheck disable=SC2317,SC2329 # invoked via trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Its log goes with the folder: the end of it is what explains a failed mail test.
    if ((rc != 0)) && [[ -s "$LOG" ]]; then
        echo "with-test-smtp: the SMTP server's last log lines:" >&2
        tail -n 30 "$LOG" >&2 || true
    fi
    # It stops at once on TERM; the grace period only bounds a wedged one.
    sw_stop "$SMTP_PID" 5
    rm -rf "$TMP_ROOT"
    exit "$rc"
}
trap cleanup EXIT

child_forward_signals

# True while PID runs (a zombie, which kill -0 still finds, does not).
smtp_alive() {
    local state
    state="$(ps -p "$1" -o stat= 2>/dev/null)" && [[ "$state" != Z* ]]
}

# The certificate: EC P-256 (quick to make); its SAN names both ways of reaching the server,
# so a client that checks the host name accepts either.
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$TMP_ROOT/key.pem" -out "$TMP_ROOT/cert.pem" >"$TMP_ROOT/openssl.log" 2>&1; then
    cat "$TMP_ROOT/openssl.log" >&2
    die "openssl could not make the test certificate"
fi
chmod 600 "$TMP_ROOT/key.pem"

SMTP_USER="mailer"
SMTP_PASSWORD="$(openssl rand -hex 16)"
ports="$(ports_pick 2)" || die "no free ports for the SMTP server"
read -r PORT TLS_PORT <<<"${ports//$'\n'/ }"

# setsid: its own session, so Ctrl-C at the terminal reaches it only through cleanup (after
# CMD has stopped). The password is passed on the command line: a throwaway one, on a
# server of this run only.
(sw_close_inherited_fds && exec setsid "$PYTHON" "$SINK" --host 127.0.0.1 --port "$PORT" \
    --tls-port "$TLS_PORT" --dir "$TMP_ROOT/mail" --cert "$TMP_ROOT/cert.pem" --key "$TMP_ROOT/key.pem" \
    --auth-user "$SMTP_USER" --auth-password "$SMTP_PASSWORD" >>"$LOG" 2>&1 </dev/null) &
SMTP_PID=$!

timeout="${SMTP_START_TIMEOUT:-30}"
deadline=$((SECONDS + timeout))
# The sink opens its implicit TLS listener before the plain one; both are checked anyway.
until smtp_greets "$PORT" && ports_listening "$TLS_PORT"; do
    if ! smtp_alive "$SMTP_PID"; then
        tail -n 30 "$LOG" >&2 || true
        die "the SMTP server exited during startup"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$LOG" >&2 || true; die "the SMTP server did not greet within ${timeout}s"; }
    sleep 0.1
done

export TEST_SMTP_HOST="127.0.0.1"
export TEST_SMTP_PORT="$PORT"
export TEST_SMTP_TLS_PORT="$TLS_PORT"
export TEST_SMTP_USER="$SMTP_USER"
export TEST_SMTP_PASSWORD="$SMTP_PASSWORD"
export TEST_SMTP_URL="smtp://$SMTP_USER:$SMTP_PASSWORD@127.0.0.1:$PORT?tls=starttls"
export TEST_SMTPS_URL="smtps://$SMTP_USER:$SMTP_PASSWORD@127.0.0.1:$TLS_PORT"
export TEST_SMTP_CA_FILE="$TMP_ROOT/cert.pem"
export TEST_SMTP_DIR="$TMP_ROOT/mail"
export TEST_SMTP_LOG="$LOG"
export TEST_MAIL_TO_JSON="$PYTHON $MAIL_TO_JSON"
export TEST_SMTP_SINK="$PYTHON $SINK"
echo "with-test-smtp: aiosmtpd $("$PYTHON" -c 'import aiosmtpd; print(aiosmtpd.__version__)' 2>/dev/null || echo '?')" \
    "on 127.0.0.1:$PORT (STARTTLS) and 127.0.0.1:$TLS_PORT (TLS), AUTH as $SMTP_USER ($TMP_ROOT)" >&2

child_run "$@"

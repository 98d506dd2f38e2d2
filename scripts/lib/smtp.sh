# shellcheck shell=bash
# The local SMTP server (scripts/lib/smtp_sink.py) of `make up` (stack.sh) and of the tests
# (with-test-smtp.sh). Source it; do not run it.
#
#   smtp_greets PORT   true when 127.0.0.1:PORT greets with 220: the server takes
#                      connections and answers
#
# The rest is part of scripts/stack.sh, the stack's SMTP sink; only stack.sh calls it
# (with-test-smtp.sh starts a server of its own). It uses stack.sh's ROOT, LOG_DIR,
# READY_TIMEOUT, SMTP_URL_GIVEN, MAIL_DIR, SMTP_SINK_DIR, SMTP_PID_FILE, SMTP_SINK_PORT,
# log, rel and pg_die, and install_find_aiosmtpd (install.sh), ports_listening (ports.sh),
# sw_close_inherited_fds and sw_stop (seaweedfs.sh); smtp_up sets SMTP_SINK_RUNNING_PORT
# and SMTP_URL.
#
#   use_local_smtp       true when the stack runs its own sink (no SMTP_URL given)
#   smtp_up              starts the sink (unless SMTP_URL was given, or it runs)
#   smtp_down            stops every sink of this stack, pid file or not
#   smtp_pid             the running sink's pid, from its pid file
#   smtp_running_port PID  its port as started
#   smtp_processes       "PID SMTP sink" for every sink of this stack
#
#   STACK_DIR/smtp/sink.pid, STACK_DIR/mail/<n>.eml (+ <n>.json), STACK_DIR/logs/smtp.log

# The connection lives in a subshell, so it is closed however the check ends.
smtp_greets() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        printf 'QUIT\r\n' >&3
        [[ "$line" == 220* ]]
    ) 2>/dev/null
}

# --------------------------------------------------------------------------- stack.sh

# The local SMTP sink: scripts/lib/smtp_sink.py with the python of the aiosmtpd venv
# (lib/install.sh), plain and without AUTH on 127.0.0.1, storing into MAIL_DIR (mode 700:
# a reset link there is as good as a password). Its pid file is in a folder of its own,
# like SeaweedFS's (lib/storage.sh says why not run/).

use_local_smtp() {
    [[ -z "$SMTP_URL_GIVEN" ]]
}

# True when PID is a sink of this stack: smtp_sink.py with this stack's mail folder in its
# command line (a zombie has none; a reused pid has another).
smtp_is_sink() {
    local -a args
    mapfile -d "" args 2>/dev/null <"/proc/$1/cmdline" || return 1
    [[ " ${args[*]} " == *"/smtp_sink.py "*" --dir $MAIL_DIR "* ]]
}

# "PID SMTP sink" for every sink of this stack, pid file or not: lib/instances.sh's
# stack_leftovers does not know the sink, so `down` looks for it here.
smtp_processes() {
    local dir pid
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        smtp_is_sink "$pid" && echo "$pid SMTP sink"
    done
    return 0
}

# The pid of the running sink, from its pid file.
smtp_pid() {
    local pid
    [[ -f "$SMTP_PID_FILE" ]] || return 1
    pid="$(cat "$SMTP_PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && smtp_is_sink "$pid" || return 1
    echo "$pid"
}

# Its port as started, from its command line (STACK_SMTP_PORT may have changed since).
smtp_running_port() {
    local i
    local -a args
    mapfile -d "" args 2>/dev/null <"/proc/$1/cmdline" || return 1
    for ((i = 0; i + 1 < ${#args[@]}; i++)); do
        [[ "${args[i]}" == --port ]] && { echo "${args[i + 1]}" && return 0; }
    done
    return 1
}

# Starts the sink (unless SMTP_URL was given, or it runs) and sets SMTP_URL for auth.
smtp_up() {
    local pid python port deadline
    if ! use_local_smtp; then
        log "SMTP_URL is set: mail goes there, no local SMTP sink"
        return 0
    fi
    if pid="$(smtp_pid)"; then
        port="$(smtp_running_port "$pid")" || port="$SMTP_SINK_PORT"
        log "SMTP sink already running (pid $pid) on 127.0.0.1:$port"
    else
        python="$(install_find_aiosmtpd)" || pg_die "aiosmtpd is needed for the local SMTP sink (see the line above); or set SMTP_URL"
        port="$SMTP_SINK_PORT"
        ports_listening "$port" && pg_die "port $port for the SMTP sink is taken (STACK_SMTP_PORT moves it; SMTP_URL sends mail elsewhere)"
        mkdir -p "$MAIL_DIR" "$SMTP_SINK_DIR"
        chmod 700 "$MAIL_DIR" "$SMTP_SINK_DIR"
        echo "--- $(date '+%Y-%m-%d %H:%M:%S') starting the SMTP sink on 127.0.0.1:$port" >>"$LOG_DIR/smtp.log"
        # setsid and closed descriptors: as the instances (lib/instances.sh, launch_service).
        (sw_close_inherited_fds && exec setsid "$python" "$ROOT/scripts/lib/smtp_sink.py" --host 127.0.0.1 \
            --port "$port" --dir "$MAIL_DIR" >>"$LOG_DIR/smtp.log" 2>&1 </dev/null) &
        pid=$!
        echo "$pid" >"$SMTP_PID_FILE"
        deadline=$((SECONDS + READY_TIMEOUT))
        until smtp_greets "$port"; do
            # Alive, not yet the sink's command line: the subshell before its exec.
            if [[ "$(ps -p "$pid" -o stat= 2>/dev/null || echo Z)" == Z* ]] || ((SECONDS >= deadline)); then
                tail -n 20 "$LOG_DIR/smtp.log" >&2 || true
                pg_die "the SMTP sink did not start (see $(rel "$LOG_DIR/smtp.log"))"
            fi
            sleep 0.1
        done
        log "SMTP sink started (pid $pid) on 127.0.0.1:$port, mail in $(rel "$MAIL_DIR")"
    fi
    # shellcheck disable=SC2034 # read by stack.sh (cmd_up)
    SMTP_SINK_RUNNING_PORT="$port"
    # Not exported: a service starts with this shell's exported environment plus the
    # variables of its row in lib/services.sh, whose knobs are read from this shell's
    # variables. SMTP_URL being a knob of auth's row only, auth alone gets it; exported,
    # every service would.
    # shellcheck disable=SC2034 # read by lib/services.sh, as a knob of auth's row
    SMTP_URL="smtp://127.0.0.1:$port?tls=none"
}

smtp_down() {
    local pid what
    while read -r pid what; do
        [[ -n "$pid" ]] || continue
        sw_stop "$pid" 5
        log "$what stopped (pid $pid)"
    done < <(smtp_processes)
    rm -f "$SMTP_PID_FILE"
}

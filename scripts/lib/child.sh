# shellcheck shell=bash
# Running the wrapped command of a with-test-*.sh script. Source it; do not run it.
#
#   child_forward_signals      once, after the script's own EXIT trap
#   child_run CMD [ARGS...]    runs CMD in the background, waits, exits with its status
#
# CMD runs in the background so that INT/TERM reach this script at once; they are
# forwarded to CMD, which is awaited before the script exits (and its EXIT trap cleans up).

CHILD_PID=""

# shellcheck disable=SC2329 # invoked via trap
child_on_signal() {
    local code="$1"
    if [[ -n "$CHILD_PID" ]]; then
        kill -TERM "$CHILD_PID" 2>/dev/null || true
        wait "$CHILD_PID" 2>/dev/null || true
    fi
    exit "$code"
}

child_forward_signals() {
    trap 'child_on_signal 130' INT
    trap 'child_on_signal 143' TERM
}

child_run() {
    local rc=0
    # <&0 keeps our stdin for CMD (background jobs otherwise get /dev/null).
    "$@" <&0 &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    exit "$rc"
}

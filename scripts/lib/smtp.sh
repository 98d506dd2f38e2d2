# shellcheck shell=bash
# The local SMTP server (scripts/lib/smtp_sink.py) of `make up` (stack.sh) and of the tests
# (with-test-smtp.sh). Source it; do not run it.
#
#   smtp_greets PORT   true when 127.0.0.1:PORT greets with 220: the server takes
#                      connections and answers

# The connection lives in a subshell, so it is closed however the check ends.
smtp_greets() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        printf 'QUIT\r\n' >&3
        [[ "$line" == 220* ]]
    ) 2>/dev/null
}

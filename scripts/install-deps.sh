#!/usr/bin/env bash
# Installs the system libraries nemotron-run builds against (Debian/Ubuntu): Open MPI and
# OpenBLAS, and what the serve tests' client needs. Swift 6 itself must already be on PATH. Safe to run again: it installs only what
# is missing.
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin libopenblas-dev pkg-config curl)
# The serve tests' client: curl, and Python 3 with venv and ensurepip (Debian splits them out);
# scripts/serve-venv.sh installs the openai package from PyPI into a venv under .build/.
python3 -c "import venv, ensurepip" 2>/dev/null || packages+=(python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    echo "installing: ${missing[*]}" >&2
    # Wait for another apt (an unattended upgrade, a parallel setup) instead of failing on its lock.
    lock=(-o DPkg::Lock::Timeout=600)
    $sudo apt-get "${lock[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get "${lock[@]}" install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "error: swift (6.0 or newer) is not on PATH" >&2; exit 1; }

#!/usr/bin/env bash
# Prepare this checkout: a virtual environment with the requirements, and with --dev also what the
# tests need from Debian (the full Fashion-MNIST set and Chromium for the browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

apt_install() {  # apt_install PACKAGE... : only what is missing, only where apt exists
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install ${missing[*]} with your package manager" >&2
    return 1
  fi
  echo "setup: installing ${missing[*]} (apt-get)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "setup: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  # Debian and Ubuntu ship venv separately from python3
  "$PYTHON" -m venv .venv 2>/dev/null || {
    rm -rf .venv
    apt_install "python3-venv"
    "$PYTHON" -m venv .venv
  }
fi

want=requirements.txt
[ "${1:-}" = "--dev" ] && want=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements*.txt | sha1sum | cut -c1-12)"  # any change reinstalls
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$want"
  touch "$stamp"
fi

if [ "${1:-}" = "--dev" ]; then
  apt_install dataset-fashion-mnist chromium
fi

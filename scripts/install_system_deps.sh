#!/usr/bin/env bash
# Debian packages the workbench needs: unar (RAR extraction for UCF-101 / HMDB-51).
set -euo pipefail
if command -v unar >/dev/null && command -v lsar >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null; then
  SUDO="sudo"
else
  echo "error: 'unar' is missing and this user cannot install it; ask for: apt-get install unar" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q unar >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q unar >/dev/null; }
command -v unar >/dev/null

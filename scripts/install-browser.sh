#!/bin/sh
# The browser the dashboard tests drive: Debian's chromium, launched by Playwright for Python
# (Playwright's own browser download is not used). Idempotent: quick when already installed.
set -eu
if command -v chromium >/dev/null 2>&1; then
    chromium --version
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
chromium --version

#!/usr/bin/env bash
# Installs the Debian packages hone builds and tests with (only the missing
# ones; needs root or sudo), and the npm packages of the integration tests.
# chromium (/usr/bin/chromium) renders the eval HTML report headless in
# tests/integ/test_report_screenshot.c (skipped when it is missing).
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libjansson-dev libsqlite3-dev libmicrohttpd-dev libopenblas-dev libdnnl-dev libpcre2-dev
      libutf8proc-dev
      libcurl4-openssl-dev sqlite3 chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from outside Debian (it does on our machines): only install
# Debian's when no node/npm is on the PATH.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/tests/integ/node/package-lock.json" ] && [ ! -d "$here/tests/integ/node/node_modules" ]; then
  (cd "$here/tests/integ/node" && npm ci --no-audit --no-fund --silent)
fi

#!/bin/sh
# System packages the harness and its tests need beyond pip:
#   osslsigncode      Authenticode signing of the virtual lab's test driver packages
#   nodejs, npm       the pinned Allure 3 report renderer (package.json; `npm ci` installs it)
#   chromium          the tests open the single-file HTML report in headless Chromium
#   fonts-dejavu-core fonts for Chromium's screenshots
#   python3-venv      `python3 -m venv` on Debian's own Python (PEP 668 refuses a system-wide pip)
#   postgresql        the coordinator's tests start a throwaway server (initdb, pg_ctl; Debian
#                     keeps them in /usr/lib/postgresql/N/bin, off PATH; the tests run their own)
# Debian/Ubuntu package names. Idempotent: installs only what is missing.
set -eu
missing=""
command -v osslsigncode >/dev/null 2>&1 || missing="$missing osslsigncode"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -d /usr/share/fonts/truetype/dejavu ] || missing="$missing fonts-dejavu-core"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || missing="$missing postgresql"
if [ -z "$missing" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "missing system packages:$missing (Debian/Ubuntu: apt-get install$missing)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
command -v osslsigncode >/dev/null && command -v npm >/dev/null && command -v chromium >/dev/null

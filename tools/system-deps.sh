#!/bin/sh
# System packages the test suite needs beyond pip: osslsigncode (Authenticode signing of the
# virtual lab's test driver packages; Debian/Ubuntu package "osslsigncode").
# Idempotent: does nothing when everything is present.
set -eu
if command -v osslsigncode >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "osslsigncode is missing: install it (Debian/Ubuntu: apt-get install osslsigncode)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq osslsigncode >/dev/null
command -v osslsigncode >/dev/null

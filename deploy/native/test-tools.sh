#!/usr/bin/env bash
# What `make test` needs besides RabbitMQ and Redis: Debian's Chromium (the pages' browser tests), and schemathesis
# (the schema-driven API fuzzer) in a virtualenv of its own under .run/tools, pinned, from PyPI.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
apt_install chromium python3 python3-venv

SCHEMATHESIS_VERSION=4.32.5
venv="$RUN_DIR/tools/schemathesis"
if [ "$("$venv/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

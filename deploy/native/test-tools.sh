#!/usr/bin/env bash
# What `make test` needs besides RabbitMQ and Redis: Debian's Chromium, for the dashboard's browser test.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
apt_install chromium

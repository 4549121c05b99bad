#!/usr/bin/env bash
# What `make test` needs besides RabbitMQ and Redis: Debian's Chromium (the pages' browser tests), libavif's
# `avifdec` (the tests decode AVIF thumbnails with the reference decoder; the worker only encodes), LittleCMS's
# `transicc` and Ghostscript's CMYK profile (the reference a CMYK JPEG's conversion is checked against), schemathesis
# (the schema-driven API fuzzer) and moto (an S3-compatible server for the object-store tests), each in a
# virtualenv of its own under .run/tools, pinned, from PyPI.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
apt_install chromium libavif-bin liblcms2-utils libgs-common python3 python3-venv

python_tool schemathesis 4.32.5 'schemathesis==4.32.5' './st --version | sed "s/^st, version //"'
install_moto

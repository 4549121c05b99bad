#!/usr/bin/env bash
# What `make test` needs besides RabbitMQ and Redis: Debian's Chromium (the pages' browser tests), schemathesis
# (the schema-driven API fuzzer) and moto (an S3-compatible server for the object-store tests), each in a
# virtualenv of its own under .run/tools, pinned, from PyPI.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
apt_install chromium python3 python3-venv

# python_tool NAME VERSION PACKAGE CHECK: installs PACKAGE into .run/tools/NAME unless CHECK (run in the venv's bin
# folder) prints VERSION.
python_tool() {
  local name=$1 version=$2 package=$3 check=$4 venv="$RUN_DIR/tools/$1"
  if [ "$(cd "$venv/bin" 2>/dev/null && eval "$check" 2>/dev/null)" != "$version" ]; then
    log "installing $name $version into $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$package"
  fi
}
python_tool schemathesis 4.32.5 'schemathesis==4.32.5' './st --version | sed "s/^st, version //"'
python_tool moto 5.2.5 'moto[server]==5.2.5' './python -c "import moto; print(moto.__version__)"'

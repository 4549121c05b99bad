#!/usr/bin/env bash
# Builds the benchmark corpus from freely licensed images in Debian packages (mate-backgrounds: JPEG photos of
# 1.3-18 megapixels and PNGs; gnome-backgrounds: 16-megapixel WebPs) and installs libvips-tools, the reference (and
# GNU time, which measures its peak memory).
# Nothing large is committed: the corpus is made here, under bench/corpus/ (git-ignored).
set -euo pipefail
. "$(dirname "$0")/../deploy/native/lib.sh"

apt_install mate-backgrounds gnome-backgrounds libvips-tools libavif-bin time
corpus="$ROOT/bench/corpus"
mkdir -p "$corpus/jpeg" "$corpus/png" "$corpus/webp"
cp -u /usr/share/backgrounds/mate/*/*.jpg "$corpus/jpeg/"
cp -u /usr/share/backgrounds/mate/*/*.png "$corpus/png/"
# The 256x256 VNC backgrounds are icons, not photographs: left out.
find /usr/share/backgrounds/gnome -name '*.webp' ! -name 'vnc-*' -exec cp -u {} "$corpus/webp/" \;
log "corpus: $(ls "$corpus/jpeg" | wc -l) JPEG, $(ls "$corpus/png" | wc -l) PNG, $(ls "$corpus/webp" | wc -l) WebP in bench/corpus"

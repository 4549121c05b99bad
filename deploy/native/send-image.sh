#!/usr/bin/env bash
# `make send-image [IMAGE=path] [QUERY='width=200&height=200']`: uploads an image (the example photo by default),
# prints the answer, waits for the thumbnail with a long poll, and saves it under .run/thumbnails/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

image=${IMAGE:-$ROOT/assets/example.jpg}
base=${THUMBQ_PUBLIC_URL:-http://${THUMBQ_BIND:-127.0.0.1:8000}}
[ -f "$image" ] || die "no such image: $image"

log "POST $base/thumbnails?${QUERY:-} ($image)"
response=$(curl -sS -w '\n%{http_code}' -F "image=@$image" "$base/thumbnails?${QUERY:-}") || die "is the API running? try: make start"
status=${response##*$'\n'}; body=${response%$'\n'*}
echo "$body"
[ "$status" = 202 ] || die "upload answered $status"
name=$(printf '%s' "$body" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')

mkdir -p "$RUN_DIR/thumbnails"
out="$RUN_DIR/thumbnails/$name"
for _ in 1 2 3 4; do
  status=$(curl -sS -o "$out" -w '%{http_code}' "$base/thumbnails/$name?wait=30")
  [ "$status" = 202 ] || break
done
[ "$status" = 200 ] || { cat "$out" >&2; echo >&2; rm -f "$out"; die "thumbnail answered $status"; }
log "thumbnail saved to $out ($(wc -c <"$out") bytes)"

#!/usr/bin/env bash
# `make send-image [IMAGE=path] [QUERY='width=200&height=200'] [KEY=tq_…]`: uploads an image (the example photo by
# default), with an API key when KEY is given, prints the answer, waits for the thumbnail with a long poll on the URL
# the answer gives (signed when signed URLs are on), and saves it under .run/thumbnails/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

image=${IMAGE:-$ROOT/assets/example.jpg}
base=${THUMBQ_PUBLIC_URL:-http://${THUMBQ_BIND:-127.0.0.1:8000}}
[ -f "$image" ] || die "no such image: $image"
auth=()
[ -z "${KEY:-}" ] || auth=(-H "Authorization: Bearer $KEY")

log "POST $base/thumbnails?${QUERY:-} ($image)"
# The API refuses a request without a good key (401/403) before reading its body, and closes the connection: with
# `Expect: 100-continue` curl waits for the go-ahead, so it reads the refusal instead of a broken pipe mid-send.
response=$(curl -sS -w '\n%{http_code}' -H 'Expect: 100-continue' "${auth[@]}" -F "image=@$image" \
  "$base/thumbnails?${QUERY:-}") \
  || die "is the API running? try: make start"
status=${response##*$'\n'}; body=${response%$'\n'*}
echo "$body"
case $status in
  202) ;;
  401) die "the API wants a key (THUMBQ_AUTH=keys): make send-image KEY=<key>, see README's API keys" ;;
  *) die "upload answered $status" ;;
esac
# The answer's own fields come before its renditions' (which have a `name` and a `url` too): the first is the task's.
field() { printf '%s' "$body" | grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4; }
name=$(field name)
url=$(field url)
# The long poll on the thumbnail's own URL: with signed URLs on, it carries the signature a download needs.
case $url in *\?*) url="$url&wait=30" ;; *) url="$url?wait=30" ;; esac

mkdir -p "$RUN_DIR/thumbnails"
out="$RUN_DIR/thumbnails/$name"
for _ in 1 2 3 4; do
  status=$(curl -sS -o "$out" -w '%{http_code}' "$url")
  [ "$status" = 202 ] || break
done
[ "$status" = 200 ] || { cat "$out" >&2; echo >&2; rm -f "$out"; die "thumbnail answered $status"; }
log "thumbnail saved to $out ($(wc -c <"$out") bytes)"

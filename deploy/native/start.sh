#!/usr/bin/env bash
# `make start`: services up, release binaries built, the API on THUMBQ_BIND and $WORKERS workers (default 2) in the
# background, with pid files and logs under .run/. Waits until /ready answers 200. Safe to run again: what already
# runs is left alone. Settings (THUMBQ_* variables) apply when a process starts: the settings the API was started
# with are recorded in .run/settings (values hashed), and a later `make start` with other settings says which
# differ and that `make restart` applies them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$ROOT/deploy/native/services.sh"
ensure_cargo
apt_install curl
build_release

mkdir -p "$RUN_DIR/logs"
export THUMBQ_STORE_URL=${THUMBQ_STORE_URL:-$ROOT/data/store}
bind=${THUMBQ_BIND:-127.0.0.1:8000}
base=${THUMBQ_PUBLIC_URL:-http://$bind}

# start_one NAME BINARY [VAR=VALUE...]: starts BINARY in the background unless NAME already runs.
start_one() {
  local name=$1 binary=$2; shift 2
  local pid_file="$RUN_DIR/$name.pid"
  if pid=$(running_pid "$pid_file"); then log "$name already running (pid $pid)"; return; fi
  env "$@" nohup "$ROOT/target/release/$binary" >>"$RUN_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pid_file"
  log "started $name (pid $!, log .run/logs/$name.log)"
}

# What already runs keeps the settings it was started with: compare them with this shell's.
settings_file="$RUN_DIR/settings"
changed=""
if running_pid "$RUN_DIR/api.pid" >/dev/null; then
  if [ -f "$settings_file" ]; then
    changed=$(LC_ALL=C comm -3 "$settings_file" <(settings_fingerprint) | awk '{print $1}' | sort -u | tr '\n' ' ')
  fi
else
  settings_fingerprint >"$settings_file"
fi

start_one api thumbq-api
for i in $(seq 1 "${WORKERS:-2}"); do
  start_one "worker-$i" thumbq-worker "THUMBQ_WORKER_ID=$(hostname):worker-$i" \
    "THUMBQ_WORKER_METRICS_PORT=$(( ${THUMBQ_WORKER_METRICS_PORT:-9100} + i - 1 ))"
done

if [ -n "$changed" ]; then
  log "warning: the running instance was started with other settings (${changed% }); they apply only at start:" \
    "run \`make restart\` (with the same variables) to apply them" >&2
fi

deadline=$((SECONDS + 60))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/ready")" = 200 ]; do
  if [ $SECONDS -ge $deadline ]; then
    tail -n 20 "$RUN_DIR/logs/api.log" >&2 || true
    die "the API is not ready after 60 s: $(curl -s "$base/ready")"
  fi
  sleep 0.5
done
cat <<TXT
[thumbq] ready.
  API          $base
  Swagger UI   $base/docs
  OpenAPI      $base/openapi.json
  Metrics      $base/metrics (API), http://127.0.0.1:${THUMBQ_WORKER_METRICS_PORT:-9100}/metrics (worker-1, then +1 each)
  Try it       make send-image   (or: curl -F image=@assets/example.jpg '$base/thumbnails?width=200&height=200')
  Stop         make stop     (settings apply at start: after changing THUMBQ_* variables, make restart)
TXT
[ -z "$changed" ] || log "note: still running with its old ${changed% }: \`make restart\` applies this shell's settings" >&2

#!/usr/bin/env bash
# `make cluster-stop`: stops what `make cluster` started, by its pid files under .run/cluster/pids, and nothing
# else: APIs and workers (SIGTERM, they drain), moto, the sentinels and Redis servers, the three RabbitMQ nodes.
# Data and logs stay in .run/cluster/ until the next `make cluster`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CLUSTER=$RUN_DIR/cluster
PIDS=$CLUSTER/pids
[ -d "$PIDS" ] || { log "no cluster to stop"; exit 0; }

# stop_pid FILE PATTERN: SIGTERM the process in FILE if its command line matches PATTERN, wait for it (40 s).
stop_pid() {
  local file=$1 pattern=$2 pid
  pid=$(cat "$file" 2>/dev/null) || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + 40))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "stopped $(basename "$file" .pid) (pid $pid)"
  fi
  rm -f "$file"
}

shopt -s nullglob
for file in "$PIDS"/api-*.pid "$PIDS"/worker-*.pid; do stop_pid "$file" thumbq-; done
[ -f "$PIDS/s3.pid" ] && stop_pid "$PIDS/s3.pid" moto_server
for file in "$PIDS"/sentinel-*.pid "$PIDS"/redis-*.pid; do stop_pid "$file" redis-server; done
for n in 1 2 3; do
  [ -f "$PIDS/rabbit-$n.pid" ] || continue
  dir=$CLUSTER/rabbit-$n
  if HOME=$dir RABBITMQ_NODENAME=thumbq-rabbit-$n@localhost /usr/lib/rabbitmq/bin/rabbitmqctl \
    -n "thumbq-rabbit-$n@localhost" stop >/dev/null 2>&1; then
    log "stopped RabbitMQ node thumbq-rabbit-$n@localhost"
  elif [ -f "$dir/rabbitmq.pid" ]; then
    stop_pid "$dir/rabbitmq.pid" beam
  fi
  rm -f "$PIDS/rabbit-$n.pid"
done

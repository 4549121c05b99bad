#!/usr/bin/env bash
# A Redis Cluster on this machine: 3 primaries and 3 replicas on 6391-6396 (cluster bus on port + 10,000), data and
# pid files under .run/cluster/ (so `make cluster-stop` stops them). Started by `make cluster REDIS=cluster` and by
# `make bench-scaling`; does nothing if the cluster answers already.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CLUSTER=$RUN_DIR/cluster
REDIS_NODES=(6391 6392 6393 6394 6395 6396)

if redis-cli -p "${REDIS_NODES[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
  log "Redis Cluster already up on ${REDIS_NODES[*]}"
  exit 0
fi
for port in "${REDIS_NODES[@]}" $(for p in "${REDIS_NODES[@]}"; do echo $((p + 10000)); done); do
  listening "$port" && die "port $port is in use: the Redis Cluster needs it"
done
apt_install redis-server
mkdir -p "$CLUSTER/pids" "$CLUSTER/logs"
for port in "${REDIS_NODES[@]}"; do
  rm -rf "$CLUSTER/redis-$port"
  redis_daemon "$CLUSTER" "$port" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1500
done
for port in "${REDIS_NODES[@]}"; do wait_for_port "$port" 30 || die "Redis $port did not start"; done
redis-cli --cluster create $(for p in "${REDIS_NODES[@]}"; do echo 127.0.0.1:$p; done) --cluster-replicas 1 \
  --cluster-yes >"$CLUSTER/logs/redis-cluster-create.log" || die "redis-cli --cluster create failed (see $CLUSTER/logs)"
# A primary killed before its replica synced is never failed over: wait for every link.
deadline=$((SECONDS + 60))
while :; do
  ready=1
  for port in "${REDIS_NODES[@]}"; do
    redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' || ready=0
    replication=$(redis-cli -p "$port" info replication)
    if grep -q 'role:slave' <<<"$replication"; then grep -q 'master_link_status:up' <<<"$replication" || ready=0; fi
  done
  [ $ready = 1 ] && break
  [ $SECONDS -lt $deadline ] || die "the Redis Cluster is not ready after 60 s (see $CLUSTER/logs)"
  sleep 0.5
done
log "Redis Cluster up: 3 primaries and 3 replicas on ${REDIS_NODES[*]}, replicas in sync"

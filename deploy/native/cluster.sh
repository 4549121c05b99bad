#!/usr/bin/env bash
# `make cluster`: the multi-machine shape of thumbq on this one machine, sharing nothing but the network:
#   RabbitMQ  three joined nodes thumbq-rabbit-{1,2,3}@localhost, AMQP 5681-5683 (quorum queues with 3 members)
#   Redis     primary 6381, replica 6382, sentinels 26381-26383 (master name "thumbq"); with REDIS=cluster
#             (`make cluster REDIS=cluster`) a Redis Cluster instead: 3 primaries and 3 replicas on 6391-6396
#   S3        moto's S3-compatible server on 5690 (PyPI), bucket "thumbq-cluster"
#   thumbq    two APIs (8100, 8101) and four workers (metrics 9201-9204), each in its own scratch folder
# Everything lives under .run/cluster/ (fresh data on every start); `make cluster-stop` stops what this started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CLUSTER=$RUN_DIR/cluster
RABBIT_BIN=/usr/lib/rabbitmq/bin
RABBIT_PORTS=(5681 5682 5683)
REDIS_PRIMARY=6381 REDIS_REPLICA=6382
SENTINELS=(26381 26382 26383)
REDIS_NODES=(6391 6392 6393 6394 6395 6396) # as in redis-cluster.sh
REDIS=${REDIS:-sentinel}
case $REDIS in
  sentinel) REDIS_PORTS=($REDIS_PRIMARY $REDIS_REPLICA "${SENTINELS[@]}") ;;
  # Each node's cluster bus is its port + 10,000.
  cluster) REDIS_PORTS=("${REDIS_NODES[@]}" $(for p in "${REDIS_NODES[@]}"; do echo $((p + 10000)); done)) ;;
  *) die "REDIS=$REDIS: sentinel (the default) or cluster" ;;
esac
S3_PORT=5690 BUCKET=thumbq-cluster
API_PORTS=(8100 8101)
WORKER_PORTS=(9201 9202 9203 9204)

if [ -d "$CLUSTER/pids" ] && compgen -G "$CLUSTER/pids/*.pid" >/dev/null; then
  die "a cluster is already running (or was not stopped): make cluster-stop first"
fi
for port in "${RABBIT_PORTS[@]}" $((RABBIT_PORTS[0] + 20000)) $((RABBIT_PORTS[1] + 20000)) $((RABBIT_PORTS[2] + 20000)) \
  "${REDIS_PORTS[@]}" $S3_PORT "${API_PORTS[@]}" "${WORKER_PORTS[@]}"; do
  listening "$port" && die "port $port is in use: make cluster needs it"
done

apt_install rabbitmq-server redis-server curl
install_moto
ensure_cargo
build_release

# Fresh data folders every time: RabbitMQ 3.10 has hung restarting on a data folder with many queues.
rm -rf "$CLUSTER"
mkdir -p "$CLUSTER/pids" "$CLUSTER/logs"
COOKIE=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

# --- RabbitMQ: three nodes, one Erlang cookie, joined to the first ---
rabbit_env() {
  local n=$1 dir=$CLUSTER/rabbit-$n
  echo "HOME=$dir RABBITMQ_NODENAME=thumbq-rabbit-$n@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
    "RABBITMQ_NODE_PORT=${RABBIT_PORTS[n-1]} RABBITMQ_DIST_PORT=$((RABBIT_PORTS[n-1] + 20000))" \
    "RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/rabbitmq.pid" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins RABBITMQ_CONFIG_FILE=$dir/rabbitmq" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf"
}
rabbitmqctl_n() { local n=$1; shift; env $(rabbit_env "$n") "$RABBIT_BIN/rabbitmqctl" -n "thumbq-rabbit-$n@localhost" "$@"; }
for n in 1 2 3; do
  dir=$CLUSTER/rabbit-$n
  mkdir -p "$dir"
  printf '%s' "$COOKIE" >"$dir/.erlang.cookie" && chmod 400 "$dir/.erlang.cookie"
  echo '[].' >"$dir/enabled_plugins"
  env $(rabbit_env "$n") "$RABBIT_BIN/rabbitmq-server" -detached
  echo "rabbit $n" >"$CLUSTER/pids/rabbit-$n.pid"
done
# await_startup fails at once until the node has registered with epmd: ask again until it answers.
for n in 1 2 3; do
  deadline=$((SECONDS + 90))
  until rabbitmqctl_n "$n" await_startup --timeout 10 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "RabbitMQ node $n did not start (see $CLUSTER/rabbit-$n/log)"
    sleep 1
  done
done
for n in 2 3; do
  rabbitmqctl_n "$n" stop_app >/dev/null
  rabbitmqctl_n "$n" join_cluster thumbq-rabbit-1@localhost >/dev/null
  rabbitmqctl_n "$n" start_app >/dev/null
done
log "RabbitMQ cluster up: $(rabbitmqctl_n 1 cluster_status --formatter json | grep -o '"running_nodes":\[[^]]*\]')"

# --- Redis: primary, replica, three sentinels; or a Redis Cluster ---
start_sentinel_redis() {
  redis_daemon "$CLUSTER" $REDIS_PRIMARY
  redis_daemon "$CLUSTER" $REDIS_REPLICA --replicaof 127.0.0.1 $REDIS_PRIMARY
  for port in "${SENTINELS[@]}"; do
    cat >"$CLUSTER/sentinel-$port.conf" <<CONF
port $port
bind 127.0.0.1
daemonize yes
dir $CLUSTER
pidfile $CLUSTER/pids/sentinel-$port.pid
logfile $CLUSTER/logs/sentinel-$port.log
sentinel monitor thumbq 127.0.0.1 $REDIS_PRIMARY 2
sentinel down-after-milliseconds thumbq 1500
sentinel failover-timeout thumbq 10000
CONF
    redis-server "$CLUSTER/sentinel-$port.conf" --sentinel
  done
  local deadline=$((SECONDS + 60))
  until redis-cli -p $REDIS_REPLICA info replication 2>/dev/null | grep -q 'master_link_status:up' \
    && redis-cli -p "${SENTINELS[0]}" sentinel master thumbq 2>/dev/null | tr -d '\r' | grep -A1 -x 'num-other-sentinels' | grep -qx 2; do
    [ $SECONDS -lt $deadline ] || die "Redis replica or sentinels not ready after 60 s (see $CLUSTER/logs)"
    sleep 0.5
  done
  log "Redis primary $REDIS_PRIMARY, replica $REDIS_REPLICA in sync, sentinels ${SENTINELS[*]} agree"
}
if [ "$REDIS" = cluster ]; then
  "$(dirname "$0")/redis-cluster.sh"
  REDIS_SUMMARY="Redis Cluster :${REDIS_NODES[0]}-${REDIS_NODES[5]} (3 primaries, 3 replicas)"
else
  start_sentinel_redis
  REDIS_SUMMARY="primary :$REDIS_PRIMARY, replica :$REDIS_REPLICA, sentinels :${SENTINELS[0]} :${SENTINELS[1]} :${SENTINELS[2]} (master \"thumbq\")"
fi

# --- S3: moto, one bucket ---
nohup "$RUN_DIR/tools/moto/bin/moto_server" -H 127.0.0.1 -p $S3_PORT >"$CLUSTER/logs/s3.log" 2>&1 </dev/null &
echo $! >"$CLUSTER/pids/s3.pid"
wait_for_port $S3_PORT 30 || die "moto did not start (see $CLUSTER/logs/s3.log)"
curl -fsS -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET" >/dev/null || die "could not create the bucket $BUCKET"

# --- thumbq: two APIs, four workers, each in a folder of its own ---
export THUMBQ_AMQP_URL="amqp://guest:guest@127.0.0.1:5681/%2f,amqp://guest:guest@127.0.0.1:5682/%2f,amqp://guest:guest@127.0.0.1:5683/%2f"
export THUMBQ_QUORUM_GROUP_SIZE=3
if [ "$REDIS" = cluster ]; then
  export THUMBQ_REDIS_URL=redis://127.0.0.1:${REDIS_NODES[0]}
  THUMBQ_REDIS_CLUSTER=$(for p in "${REDIS_NODES[@]}"; do printf '127.0.0.1:%s,' "$p"; done)
  export THUMBQ_REDIS_CLUSTER=${THUMBQ_REDIS_CLUSTER%,}
else
  export THUMBQ_REDIS_URL=redis://127.0.0.1:$REDIS_PRIMARY
  export THUMBQ_REDIS_SENTINELS="127.0.0.1:${SENTINELS[0]},127.0.0.1:${SENTINELS[1]},127.0.0.1:${SENTINELS[2]}"
  export THUMBQ_REDIS_MASTER_NAME=thumbq
fi
export THUMBQ_STORE_URL=s3://$BUCKET/thumbq THUMBQ_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=thumbq AWS_SECRET_ACCESS_KEY=thumbq AWS_REGION=us-east-1
start_in_folder() {
  local name=$1 binary=$2; shift 2
  mkdir -p "$CLUSTER/$name"
  # `env` and `nohup` exec the binary: the pid is the binary's own.
  (cd "$CLUSTER/$name" || exit 1
    env "$@" nohup "$ROOT/target/release/$binary" >>"$CLUSTER/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$CLUSTER/pids/$name.pid")
}
for i in 1 2; do
  port=${API_PORTS[i-1]}
  start_in_folder "api-$i" thumbq-api THUMBQ_BIND=127.0.0.1:$port THUMBQ_PUBLIC_URL=http://127.0.0.1:$port
done
for i in 1 2 3 4; do
  start_in_folder "worker-$i" thumbq-worker THUMBQ_WORKER_ID=cluster-worker-$i THUMBQ_WORKER_METRICS_PORT=${WORKER_PORTS[i-1]}
done
for port in "${API_PORTS[@]}"; do
  deadline=$((SECONDS + 60))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" = 200 ]; do
    [ $SECONDS -lt $deadline ] || die "the API on $port is not ready after 60 s: $(curl -s "http://127.0.0.1:$port/ready")"
    sleep 0.5
  done
done

# One thumbnail through the whole shape: uploaded to the first API, downloaded from the second.
name=$(curl -fsS -F "image=@$ROOT/assets/example.jpg" "http://127.0.0.1:${API_PORTS[0]}/thumbnails" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${API_PORTS[1]}/thumbnails/$name?wait=30")
[ "$status" = 200 ] || die "the smoke test's thumbnail answered $status on the second API"

cat <<TXT
[thumbq] cluster ready (uploaded to :${API_PORTS[0]}, downloaded from :${API_PORTS[1]}: $name).
  APIs         http://127.0.0.1:${API_PORTS[0]}  http://127.0.0.1:${API_PORTS[1]}   (Swagger UI at /docs, dashboard at /dashboard)
  Workers      cluster-worker-1..4, metrics on :${WORKER_PORTS[0]}-${WORKER_PORTS[3]}
  RabbitMQ     thumbq-rabbit-{1,2,3}@localhost on :5681 :5682 :5683 (guest/guest, loopback only)
  Redis        $REDIS_SUMMARY
  S3           http://127.0.0.1:$S3_PORT/$BUCKET (moto)
  Data, logs   $CLUSTER/
  Try          curl -F image=@assets/example.jpg http://127.0.0.1:${API_PORTS[0]}/thumbnails
  Stop         make cluster-stop
TXT

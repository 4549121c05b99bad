#!/usr/bin/env bash
# `make bench-scaling`: the figures behind docs/scaling.md. Runs the end-to-end bench (tests/bench/end_to_end.rs)
# with 1, 2 and 4 worker processes on three set-ups, all on this machine: one RabbitMQ node, one Redis and the file
# store; the same with the S3 store; the `make cluster` services (three RabbitMQ nodes with 3-member quorum queues,
# Redis primary + replica + sentinels with WAIT) with the S3 store; those with four work queues
# (THUMBQ_WORK_QUEUES=4); and with four work queues on a Redis Cluster of 3 primaries and 3 replicas. Starts `make
# cluster` and the Redis Cluster (deploy/native/redis-cluster.sh) if they are not running. THUMBQ_BENCH_SETUPS
# (default 1,2,3,4,5) picks set-ups.
set -euo pipefail
. "$(dirname "$0")/../deploy/native/lib.sh"
cd "$ROOT"

curl -fs -o /dev/null http://127.0.0.1:8100/health || "$ROOT/deploy/native/cluster.sh"
"$ROOT/deploy/native/redis-cluster.sh"
"$ROOT/deploy/native/services.sh"
bench/corpus.sh
ensure_cargo
cargo build --release --locked -q -p thumbq-api -p thumbq-worker
cargo bench --no-run --locked -q -p thumbq-tests --bench end_to_end

rows=${THUMBQ_BENCH_ROWS:-8x1,8x2,8x4}
s3=(THUMBQ_STORE_URL=s3://thumbq-cluster/scaling THUMBQ_S3_ENDPOINT=http://127.0.0.1:5690 AWS_ACCESS_KEY_ID=thumbq
  AWS_SECRET_ACCESS_KEY=thumbq AWS_REGION=us-east-1 THUMBQ_BENCH_S3_LOG=$RUN_DIR/cluster/logs/s3.log)
cluster=(THUMBQ_AMQP_URL=amqp://guest:guest@127.0.0.1:5681/%2f,amqp://guest:guest@127.0.0.1:5682/%2f,amqp://guest:guest@127.0.0.1:5683/%2f
  THUMBQ_QUORUM_GROUP_SIZE=3 THUMBQ_REDIS_URL=redis://127.0.0.1:6381 THUMBQ_REDIS_MASTER_NAME=thumbq
  THUMBQ_REDIS_SENTINELS=127.0.0.1:26381,127.0.0.1:26382,127.0.0.1:26383)
redis_cluster=(THUMBQ_REDIS_URL=redis://127.0.0.1:6391 THUMBQ_REDIS_SENTINELS=
  THUMBQ_REDIS_CLUSTER=127.0.0.1:6391,127.0.0.1:6392,127.0.0.1:6393,127.0.0.1:6394,127.0.0.1:6395,127.0.0.1:6396)
setups=,${THUMBQ_BENCH_SETUPS:-1,2,3,4,5},

bench() { env THUMBQ_BENCH_ROWS="$rows" "$@" cargo bench --locked -q -p thumbq-tests --bench end_to_end; }
if [[ $setups == *,1,* ]]; then
  echo "=== 1. one RabbitMQ node, one Redis, file store"
  bench
fi
if [[ $setups == *,2,* ]]; then
  echo "=== 2. one RabbitMQ node, one Redis, S3 store (moto)"
  bench "${s3[@]}"
fi
if [[ $setups == *,3,* ]]; then
  echo "=== 3. three RabbitMQ nodes (quorum queues of 3), Redis with a replica and sentinels, S3 store"
  bench "${s3[@]}" "${cluster[@]}"
fi
if [[ $setups == *,4,* ]]; then
  echo "=== 4. as 3, with four work queues (THUMBQ_WORK_QUEUES=4)"
  bench "${s3[@]}" "${cluster[@]}" THUMBQ_WORK_QUEUES=4
fi
if [[ $setups == *,5,* ]]; then
  echo "=== 5. as 4, on a Redis Cluster (3 primaries, 3 replicas)"
  bench "${s3[@]}" "${cluster[@]}" THUMBQ_WORK_QUEUES=4 "${redis_cluster[@]}"
fi

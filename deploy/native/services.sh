#!/usr/bin/env bash
# Makes sure RabbitMQ and Redis run on this machine: installs them from Debian's packages when missing and starts
# them when nothing listens on their ports. Safe to run again. Skipped entirely with THUMBQ_EXTERNAL_SERVICES=1
# (services elsewhere, named by THUMBQ_AMQP_URL and THUMBQ_REDIS_URL).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "${THUMBQ_EXTERNAL_SERVICES:-0}" = 1 ] && { log "using external RabbitMQ and Redis"; exit 0; }

if ! listening 6379; then
  apt_install redis-server
  log "starting Redis on 127.0.0.1:6379"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/thumbq.log
  wait_for_port 6379 30 || die "Redis did not start listening on 6379 (see /var/log/redis/thumbq.log)"
fi

if ! listening 5672; then
  apt_install rabbitmq-server
  # The package's own service may be starting already (systemd); start it ourselves only if it does not come up.
  if ! wait_for_port 5672 5; then
    log "starting RabbitMQ on 127.0.0.1:5672"
    as_root rabbitmq-server -detached
  fi
  wait_for_port 5672 90 || die "RabbitMQ did not start listening on 5672 (see /var/log/rabbitmq/)"
fi
# Listening is not enough: a hung node accepts connections and never answers them.
answers 6379 'PING\r\n' '+PONG' || die "Redis listens on 6379 but does not answer PING: restart it"
answers 5672 'AMQP\0\0\x09\x01' '\x01\x00\x00' ||
  die "RabbitMQ listens on 5672 but does not answer the AMQP handshake: restart it (service rabbitmq-server restart)"
log "RabbitMQ (5672) and Redis (6379) are up and answer"

#!/usr/bin/env bash
# Writes deploy/docker/.env with random secrets for docker-compose.yml, once: RabbitMQ's and Redis's passwords and
# the key that signs download URLs (used when THUMBQ_SIGNED_URLS=1). Hex, so they are safe inside URLs.
set -euo pipefail
env_file="$(cd "$(dirname "$0")" && pwd)/.env"
if [ -e "$env_file" ]; then
  echo "$env_file exists; remove it to make new secrets (the volumes keep the old RabbitMQ password)" >&2
  exit 0
fi
secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
{
  echo "RABBITMQ_PASSWORD=$(secret)"
  echo "REDIS_PASSWORD=$(secret)"
  echo "THUMBQ_URL_SIGNING_KEY=$(secret)"
} > "$env_file"
echo "wrote $env_file (readable by you only)"

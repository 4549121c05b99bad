#!/usr/bin/env bash
# `make stop`: stops what `make start` started, by pid file and nothing else. Workers get SIGTERM and finish their
# in-flight tasks first (up to THUMBQ_SHUTDOWN_GRACE_SECS, default 30).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

grace=$(( ${THUMBQ_SHUTDOWN_GRACE_SECS:-30} + 10 ))
shopt -s nullglob
for pid_file in "$RUN_DIR"/*.pid; do
  name=$(basename "$pid_file" .pid)
  if pid=$(running_pid "$pid_file"); then
    kill -TERM "$pid"
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; log "killed $name (pid $pid) after ${grace}s"
    else log "stopped $name (pid $pid)"; fi
  fi
  rm -f "$pid_file"
done
# Nothing runs now: no settings to compare a later start with.
rm -f "$RUN_DIR/settings"

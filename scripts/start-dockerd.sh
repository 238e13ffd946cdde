#!/usr/bin/env bash
# Starts a local Docker engine for tests and CI when none answers on the default socket.
# The engine gets no bridge and touches no iptables/forwarding: containers run with network mode
# `none` (or host) only.
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=${DOCKERD_LOG:-/tmp/dockerd.log}

if docker version >/dev/null 2>&1; then
  echo "start-dockerd: engine already answers on ${DOCKER_HOST:-unix://$SOCK}"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-dockerd: ERROR: dockerd is not installed (apt-get install docker.io)" >&2
  exit 1
fi

echo "start-dockerd: starting dockerd (log: $LOG)"
# setsid + nohup: the engine outlives this script and the shell that started it.
setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  >"$LOG" 2>&1 </dev/null &
DPID=$!

for _ in $(seq 1 120); do
  if docker version >/dev/null 2>&1; then
    echo "start-dockerd: engine is up (pid $DPID)"
    exit 0
  fi
  if ! kill -0 "$DPID" 2>/dev/null; then
    echo "start-dockerd: ERROR: dockerd exited early; last log lines:" >&2
    tail -n 40 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done

echo "start-dockerd: ERROR: no answer on $SOCK after 60 s; last log lines:" >&2
tail -n 40 "$LOG" >&2 || true
exit 1

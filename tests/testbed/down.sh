#!/usr/bin/env bash
# Stop exactly the processes up.sh started (by their recorded pids) and remove their state.
#   down.sh [--keep-logs]   keep $TESTBED_DIR/logs for a post-mortem
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${TESTBED_DIR:-$(cd "$HERE/../.." && pwd)/.testbed}"
[ -d "$STATE" ] || exit 0
# KEDA's processes (tests/support/keda.py) first: they talk to the apiserver.
components=(keda keda-adapter kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
for c in "${components[@]}"; do
  [ -f "$STATE/pids/$c.pid" ] && kill "$(cat "$STATE/pids/$c.pid")" 2>/dev/null
done
for c in "${components[@]}"; do
  pidfile="$STATE/pids/$c.pid"
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$pidfile"
done
if [ "${1:-}" = "--keep-logs" ]; then
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
else
  rm -rf "$STATE"
fi

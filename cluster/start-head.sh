#!/usr/bin/env bash
# Start the Ray head node of an Agent Forge cluster on this machine.
#
#   cluster/start-head.sh [extra `ray start` options...]      e.g. --num-gpus 1
#
# Settings (environment; defaults in brackets):
#   RAY_AUTH_MODE          token | disabled [token]. The cluster, every worker and every driver
#                          (`python -m forge.submit`, `ray job ...`) must use the same mode.
#   FORGE_NODE_IP          address other machines reach this one at [Ray's guess]
#   FORGE_HEAD_PORT        GCS port workers and drivers connect to [6379]
#   FORGE_DASHBOARD_HOST   dashboard + job server bind address [127.0.0.1: reach it through
#                          an SSH tunnel; 0.0.0.0 exposes job submission to the network]
#   FORGE_DASHBOARD_PORT   [8265]
#   FORGE_CLIENT_PORT, FORGE_NODE_MANAGER_PORT, FORGE_OBJECT_MANAGER_PORT, FORGE_AGENT_PORT,
#   FORGE_AGENT_GRPC_PORT, FORGE_METRICS_PORT, FORGE_RUNTIME_ENV_PORT,
#   FORGE_MIN_WORKER_PORT, FORGE_MAX_WORKER_PORT
#                          fixed so a firewall can allow them (cluster/README.md lists them)
#   FORGE_TEMP_DIR         Ray's session/log directory [/tmp/ray]
#   FORGE_BLOCK=1          stay in the foreground (systemd, containers); SIGTERM stops the node
set -euo pipefail

usage() {  # the comment block at the top of this file
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac

export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
case "$RAY_AUTH_MODE" in
    token|disabled) ;;
    *) echo "error: RAY_AUTH_MODE must be 'token' or 'disabled', got '$RAY_AUTH_MODE'" >&2; exit 2 ;;
esac
command -v ray >/dev/null || { echo "error: 'ray' not on PATH; install the project first (README: Install)" >&2; exit 2; }

HEAD_PORT="${FORGE_HEAD_PORT:-6379}"
DASHBOARD_HOST="${FORGE_DASHBOARD_HOST:-127.0.0.1}"
DASHBOARD_PORT="${FORGE_DASHBOARD_PORT:-8265}"

if [ "$RAY_AUTH_MODE" = token ]; then
    # One token for the whole cluster: created here once, copied to each worker and driver.
    ray get-auth-token --generate >/dev/null
fi

args=(--head
      --port "$HEAD_PORT"
      --dashboard-host "$DASHBOARD_HOST" --dashboard-port "$DASHBOARD_PORT"
      --ray-client-server-port "${FORGE_CLIENT_PORT:-10001}"
      --node-manager-port "${FORGE_NODE_MANAGER_PORT:-6380}"
      --object-manager-port "${FORGE_OBJECT_MANAGER_PORT:-6381}"
      --runtime-env-agent-port "${FORGE_RUNTIME_ENV_PORT:-6382}"
      --dashboard-agent-grpc-port "${FORGE_AGENT_GRPC_PORT:-6383}"
      --metrics-export-port "${FORGE_METRICS_PORT:-6384}"
      --dashboard-agent-listen-port "${FORGE_AGENT_PORT:-52365}"
      --min-worker-port "${FORGE_MIN_WORKER_PORT:-10002}"
      --max-worker-port "${FORGE_MAX_WORKER_PORT:-19999}")
[ -n "${FORGE_NODE_IP:-}" ] && args+=(--node-ip-address "$FORGE_NODE_IP")
[ -n "${FORGE_TEMP_DIR:-}" ] && args+=(--temp-dir "$FORGE_TEMP_DIR")

ip="${FORGE_NODE_IP:-HEAD_IP}"
cat <<EOF
Agent Forge head: RAY_AUTH_MODE=$RAY_AUTH_MODE, GCS port $HEAD_PORT, dashboard http://$DASHBOARD_HOST:$DASHBOARD_PORT
  add a machine:  RAY_AUTH_MODE=$RAY_AUTH_MODE cluster/start-worker.sh $ip:$HEAD_PORT
  run:            RAY_AUTH_MODE=$RAY_AUTH_MODE python -m forge.submit --address $ip:$HEAD_PORT
  or as a job:    RAY_AUTH_MODE=$RAY_AUTH_MODE ray job submit --address http://127.0.0.1:$DASHBOARD_PORT -- python -m forge.submit
EOF
if [ "$RAY_AUTH_MODE" = token ]; then
    echo "  token:          copy ~/.ray/auth_token (or 'ray get-auth-token') to each worker and driver"
fi

if [ "${FORGE_BLOCK:-0}" = 1 ]; then
    exec ray start "${args[@]}" --block "$@"
fi
exec ray start "${args[@]}" "$@"

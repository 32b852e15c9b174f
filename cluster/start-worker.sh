#!/usr/bin/env bash
# Join this machine to an Agent Forge cluster as a Ray worker node.
#
#   cluster/start-worker.sh HEAD_ADDRESS [extra `ray start` options...]
#       HEAD_ADDRESS   the head's host:port, e.g. 192.168.1.10:6379 (printed by start-head.sh)
#
# Settings (environment; defaults in brackets):
#   RAY_AUTH_MODE          token | disabled [token]: the same mode the head was started with.
#                          With token, this machine needs the head's token: ~/.ray/auth_token,
#                          RAY_AUTH_TOKEN_PATH=<file> or RAY_AUTH_TOKEN=<token>.
#   FORGE_NODE_IP          address the other machines reach this one at [Ray's guess]
#   FORGE_NODE_MANAGER_PORT, FORGE_OBJECT_MANAGER_PORT, FORGE_AGENT_PORT,
#   FORGE_AGENT_GRPC_PORT, FORGE_METRICS_PORT, FORGE_RUNTIME_ENV_PORT,
#   FORGE_MIN_WORKER_PORT, FORGE_MAX_WORKER_PORT   fixed ports (cluster/README.md)
#   FORGE_BLOCK=1          stay in the foreground (systemd, containers); SIGTERM stops the node
set -euo pipefail

usage() {  # the comment block at the top of this file
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") echo "error: missing HEAD_ADDRESS (host:port of the head node)" >&2; usage >&2; exit 2 ;;
esac
HEAD="$1"; shift
if ! [[ "$HEAD" =~ ^[^:[:space:]]+:[0-9]+$ ]]; then
    echo "error: HEAD_ADDRESS must be host:port, e.g. 192.168.1.10:6379; got '$HEAD'" >&2
    exit 2
fi

export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
case "$RAY_AUTH_MODE" in
    token|disabled) ;;
    *) echo "error: RAY_AUTH_MODE must be 'token' or 'disabled', got '$RAY_AUTH_MODE'" >&2; exit 2 ;;
esac
if [ "$RAY_AUTH_MODE" = token ] && [ -z "${RAY_AUTH_TOKEN:-}" ] \
        && [ ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; then
    echo "error: RAY_AUTH_MODE=token but no token here: copy the head's ~/.ray/auth_token to" \
         "this machine (or set RAY_AUTH_TOKEN), or start everything with RAY_AUTH_MODE=disabled" >&2
    exit 2
fi
command -v ray >/dev/null || { echo "error: 'ray' not on PATH; install the project first (README: Install)" >&2; exit 2; }

args=(--address "$HEAD"
      --node-manager-port "${FORGE_NODE_MANAGER_PORT:-6380}"
      --object-manager-port "${FORGE_OBJECT_MANAGER_PORT:-6381}"
      --runtime-env-agent-port "${FORGE_RUNTIME_ENV_PORT:-6382}"
      --dashboard-agent-grpc-port "${FORGE_AGENT_GRPC_PORT:-6383}"
      --metrics-export-port "${FORGE_METRICS_PORT:-6384}"
      --dashboard-agent-listen-port "${FORGE_AGENT_PORT:-52365}"
      --min-worker-port "${FORGE_MIN_WORKER_PORT:-10002}"
      --max-worker-port "${FORGE_MAX_WORKER_PORT:-19999}")
[ -n "${FORGE_NODE_IP:-}" ] && args+=(--node-ip-address "$FORGE_NODE_IP")

echo "Agent Forge worker: joining $HEAD with RAY_AUTH_MODE=$RAY_AUTH_MODE"
if [ "${FORGE_BLOCK:-0}" = 1 ]; then
    exec ray start "${args[@]}" --block "$@"
fi
exec ray start "${args[@]}" "$@"

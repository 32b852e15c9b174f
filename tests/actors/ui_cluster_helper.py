"""A local Ray with its dashboard, on loopback, for the dashboard's cluster tests (run as a
script: a test process may already have its own ray.init). Sets the forge gauges once from this
driver, prints {"dashboard": URL, "metrics_port": N} on one line, and stops Ray when stdin
closes. Every port is a free one, the dashboard agent's too: its default (52365) is taken by
any other Ray on the machine, and then no job can be submitted ("No available agent")."""
import json
import socket
import sys

import ray
import ray._private.parameter as parameter

from actors.metrics import record_metrics, record_progress


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_port(port: int) -> None:
    """Start the dashboard agent on `port`: ray.init has no argument for it (`ray start
    --dashboard-agent-listen-port` has), so the default of Ray's node parameters is replaced."""
    original = parameter.RayParams.__init__

    def init(self, *args, **kwargs):
        kwargs["dashboard_agent_listen_port"] = port
        original(self, *args, **kwargs)
    parameter.RayParams.__init__ = init


def main() -> None:
    dashboard_port, metrics_port = free_port(), free_port()
    agent_port(free_port())
    ray.init(address="local", num_cpus=1, include_dashboard=True, dashboard_host="127.0.0.1",
             dashboard_port=dashboard_port, _metrics_export_port=metrics_port,
             _node_ip_address="127.0.0.1", object_store_memory=75 * 1024**2, log_to_driver=False)
    try:
        record_progress("ui-test", "cognate", 3, 12)
        record_metrics("ui-test", "cognate", "reasoning", {"train/loss": 2.5, "tokens_per_s": 1500.0})
        print(json.dumps({"dashboard": f"http://127.0.0.1:{dashboard_port}",
                          "metrics_port": metrics_port}), flush=True)
        sys.stdin.read()  # until the test closes our stdin
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()

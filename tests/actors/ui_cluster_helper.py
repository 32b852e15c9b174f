"""A local Ray with its dashboard, on loopback, for the dashboard's cluster tests (run as a
script: a test process may already have its own ray.init). Sets the forge gauges once from this
driver, prints {"dashboard": URL, "metrics_port": N} on one line, and stops Ray when stdin
closes."""
import json
import socket
import sys

import ray

from actors.metrics import record_metrics, record_progress


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    dashboard_port, metrics_port = free_port(), free_port()
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

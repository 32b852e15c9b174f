"""An optional Hugging Face dataset as a text source: for users with network access only.

Offline it fails at once with a one-line `DataError`: HF_HUB_OFFLINE / HF_DATASETS_OFFLINE are
honoured before anything else, then one TCP connection with a short timeout tests the network, so
a blocked machine never waits on retries inside the hub client.
"""
from __future__ import annotations

import os
import socket

from forge.data.errors import DataError

HUB_HOST = "huggingface.co"
CONNECT_TIMEOUT_S = 3.0
_TRUE = {"1", "true", "yes", "on"}


def offline_flag() -> str | None:
    """The name of the environment variable that asks for offline mode, if one is set."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def check_hub_reachable(name: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise `DataError` unless offline mode is off and the hub answers a TCP connect in time."""
    flag = offline_flag()
    if flag:
        raise DataError(f"data.hf_dataset: {name!r} needs the Hugging Face hub but {flag} is set; "
                        "use data.text_files for offline text")
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout_s).close()
    except OSError as err:
        raise DataError(f"data.hf_dataset: {name!r} needs the Hugging Face hub, which is not "
                        f"reachable ({err.__class__.__name__}); use data.text_files offline") from err


def hub_documents(name: str, split: str, field: str) -> list[str]:
    """The `field` strings of split `split` of hub dataset `name` (needs `datasets` and network)."""
    check_hub_reachable(name)
    try:
        import datasets  # optional: not a dependency of the offline engine
    except ImportError as err:
        raise DataError(f"data.hf_dataset: {name!r} needs the `datasets` package "
                        "(pip install datasets)") from err
    rows = datasets.load_dataset(name, split=split)
    if field not in rows.column_names:
        raise DataError(f"data.hf_dataset: {name!r} has no column {field!r} "
                        f"(columns: {', '.join(rows.column_names)}; set data.jsonl_text_field)")
    return [t for t in rows[field] if isinstance(t, str)]

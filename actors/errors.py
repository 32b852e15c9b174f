"""One-line descriptions of errors that crossed Ray (whose own messages carry tracebacks)."""
from __future__ import annotations

import ray


def root_cause(err: BaseException) -> BaseException:
    """The original exception inside (possibly nested) RayTaskErrors."""
    while isinstance(err, ray.exceptions.RayTaskError) and err.cause is not None:
        err = err.cause
    return err


def one_line(err: BaseException) -> str:
    """'Type: first line of the message' of the root cause."""
    cause = root_cause(err)
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}".rstrip(": ")

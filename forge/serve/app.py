"""The OpenAI-compatible HTTP app (FastAPI) over a `CompletionEngine`; Ray Serve hosts it
(`actors/serve.py`), and it runs as it is under any ASGI server or FastAPI's TestClient.

    POST /v1/completions   {"prompt": "...", "max_tokens": 16, "temperature": 1.0, "top_p": 1.0,
                            "n": 1, "stop": null, "seed": null, "stream": false}
                           -> {"id", "object": "text_completion", "created", "model",
                               "choices": [{"index", "text", "finish_reason", "logprobs"}],
                               "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}
                           stream: server-sent events, one chunk per delta, then "data: [DONE]"
    GET  /v1/models        {"object": "list", "data": [{"id", "object": "model", ...}]}
    GET  /health           {"status": "ok", "model"}

Every bad request is HTTP 400 with an OpenAI-shaped error {"error": {"message", "type", "param"}}:
unknown fields, wrong types, NaN or out-of-range numbers, malformed JSON, a prompt that does not
fit the context. A model name other than the one served is 404 (as OpenAI answers).
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
                      field_validator)

from forge.serve.engine import CompletionEngine, CompletionError, SamplingParams

MAX_N = 16  # choices per request
MAX_STOP = 4  # stop strings per request (OpenAI's limit)


class CompletionRequest(BaseModel):
    """The body of POST /v1/completions (OpenAI's fields that this server implements)."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = None
    prompt: StrictStr | list[StrictStr] = ""
    max_tokens: StrictInt = Field(16, ge=1)
    temperature: StrictFloat = Field(1.0, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: StrictFloat = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    n: StrictInt = Field(1, ge=1, le=MAX_N)
    stop: StrictStr | list[StrictStr] | None = None
    seed: StrictInt | None = None
    stream: StrictBool = False
    user: StrictStr | None = None  # accepted and ignored, as OpenAI's own abuse-tracking hint

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("give at least one prompt")
        return v

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > MAX_STOP or any(not s for s in stops):
            raise ValueError(f"at most {MAX_STOP} non-empty stop strings")
        return v

    def params(self) -> SamplingParams:
        """The sampling settings of this request."""
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(self.max_tokens, float(self.temperature), float(self.top_p), self.n,
                              stop, self.seed)

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


def error(status: int, message: str, param: str | None = None,
          kind: str = "invalid_request_error") -> JSONResponse:
    """An OpenAI-shaped error response."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": None}}, status_code=status)


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    first = err.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = loc[0] if loc else None
    if first.get("type") == "extra_forbidden":
        return f"unknown field {param!r}", param
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    where = ".".join(loc) or "body"
    return f"{where}: {first.get('msg', 'invalid value')}", param


def build_app(engine: CompletionEngine) -> FastAPI:
    """The FastAPI app serving `engine` (see the module docstring for the routes)."""
    app = FastAPI(title="Agent Forge", description="OpenAI-compatible completions")

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, err: RequestValidationError) -> JSONResponse:
        return error(400, *_validation_message(err))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": engine.name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": engine.name, "object": "model",
                                            "created": 0, "owned_by": "agent-forge"}]}

    @app.post("/v1/completions", response_model=None)
    def completions(body: CompletionRequest) -> Any:
        # A sync route: FastAPI runs it in its thread pool, so the event loop stays free.
        if body.model is not None and body.model != engine.name:
            return error(404, f"model {body.model!r} is not served here; GET /v1/models lists "
                              f"{engine.name!r}", "model", "not_found_error")
        params, prompts = body.params(), body.prompts()
        try:
            encoded = [engine.encode(p) for p in prompts]
            for ids in encoded:
                engine.check(ids, params)
        except CompletionError as err:
            return error(400, str(err), "prompt")
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": int(time.time()), "model": engine.name}
        if body.stream:
            return StreamingResponse(_events(engine, encoded, params, head),
                                     media_type="text/event-stream")
        return _response(engine, encoded, params, head)

    return app


def _response(engine: CompletionEngine, encoded: list[list[int]], params: SamplingParams,
              head: dict[str, Any]) -> dict[str, Any]:
    choices, generated = [], 0
    for i, ids in enumerate(encoded):
        for c in engine.complete(ids, params, first_index=i * params.n):
            generated += c["tokens"]
            choices.append({"index": c["index"], "text": c["text"], "logprobs": None,
                            "finish_reason": c["finish_reason"]})
    prompt_tokens = sum(len(ids) for ids in encoded)
    return {**head, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": generated,
                      "total_tokens": prompt_tokens + generated}}


def _events(engine: CompletionEngine, encoded: list[list[int]], params: SamplingParams,
            head: dict[str, Any]) -> Iterator[str]:
    """Server-sent events: one text_completion chunk per delta, then `data: [DONE]`."""
    for i, ids in enumerate(encoded):
        for d in engine.stream(ids, params, first_index=i * params.n):
            choice = {"index": d.index, "text": d.text, "logprobs": None,
                      "finish_reason": d.finish_reason}
            yield f"data: {json.dumps({**head, 'choices': [choice]})}\n\n"
    yield "data: [DONE]\n\n"


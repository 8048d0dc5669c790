"""The "OpenAI-compatible server" backend: :class:`ServerPromptWriter` writes prompts through a model server's ``/v1``.

Works with llama.cpp's server (``llama-server``, ``python -m llama_cpp.server``), Ollama's ``/v1``, LM Studio and
vLLM. The model is chosen by name from the server's ``/v1/models`` (the one asked for, else the job's model when the
server has it, else the first one); the seed is passed; the output grammar of :func:`grammar_for` is passed where the
server takes one (llama.cpp's ``grammar``, vLLM's ``structured_outputs``), otherwise the text is only cleaned, as the
local backend's is. Tokens stream back (server-sent events) to the progress callback; Interrupt closes the stream.

Requests time out after ``timeout`` seconds per read; a refused connection, a timeout, 429 or a 5xx answer is retried
``retries`` times with a doubling pause. Errors are :class:`ModelLoadError` (so the failure policy decides, as for any
LLM failure) and name the URL and the fix. The API key goes into the ``Authorization`` header only: never into a
message, a log line, ``repr`` or infotext.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from interstable.errors import ConfigError, JobInterrupted, ModelLoadError, ModelNotFoundError
from interstable.llm.answer import finish_answer
from interstable.prompt import PromptRequest, SamplingSettings, build_messages, grammar_for

__all__ = ["ServerPromptWriter", "normalize_url", "server_status"]

logger = logging.getLogger("interstable")

_STOP = ["</s>", "[INST]", "<|im_end|>", "<|eot_id|>", "\n\n"]
_SEED_MODULUS = 0xFFFFFFFF
_RETRY_STATUS = {429, 500, 502, 503, 504}
_FIX = (
    "start the server (for example `llama-server -m model.gguf --port 8080`, `ollama serve`) or correct "
    "Settings -> InterStable -> LLM server URL (the CLI's --llm-url)"
)


def normalize_url(url: str) -> str:
    """The base URL ending in ``/v1`` (added when missing).

    Raises:
        ConfigError: Not an http(s) URL.
    """
    text = str(url or "").strip().rstrip("/")
    if not text.lower().startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise ConfigError(
            "LLM server URL (Settings -> InterStable, or --llm-url)",
            url,
            "use the server's OpenAI-compatible base, for example http://127.0.0.1:8080/v1",
        )
    return text if text.endswith("/v1") else text + "/v1"


class _Http:
    def __init__(self, base_url: str, api_key: str | None, timeout: float, retries: int, backoff: float) -> None:
        self.base = normalize_url(base_url)
        self._key = api_key or None
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)

    def _request(self, path: str, body: dict[str, Any] | None) -> urllib.request.Request:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        return urllib.request.Request(
            self.base + path, data=data, headers=headers, method="GET" if body is None else "POST"
        )

    def open(self, path: str, body: dict[str, Any] | None = None, should_stop: Callable[[], bool] | None = None) -> Any:
        """Open ``path`` (retrying what can pass); the response, for reading or streaming."""
        url = self.base + path
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                return urllib.request.urlopen(self._request(path, body), timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                detail = _error_text(exc)
                if exc.code in (401, 403):
                    raise ModelLoadError(
                        f"The LLM server at {url} refused the request (HTTP {exc.code}: {detail}): set its API key "
                        "in the environment variable named in Settings -> InterStable -> LLM server API key "
                        "(or the key setting, or --llm-key-env on the command line)."
                    ) from None
                if exc.code not in _RETRY_STATUS or last:
                    raise ModelLoadError(f"The LLM server at {url} answered HTTP {exc.code}: {detail}") from None
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = str(getattr(exc, "reason", exc)) or type(exc).__name__
                if last:
                    raise ModelLoadError(
                        f"The LLM server at {url} cannot be reached ({reason}, {attempt + 1} tries, "
                        f"{self.timeout:g} s timeout): {_FIX}."
                    ) from None
            pause = self.backoff * 2**attempt
            logger.warning("InterStable: the LLM server at %s: %s; retrying in %.1f s", url, reason, pause)
            end = time.monotonic() + pause
            while time.monotonic() < end:
                if should_stop is not None and should_stop():
                    raise JobInterrupted("The prompt writing was cancelled while waiting for the LLM server.")
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> Any:
        with self.open(path) as response:
            try:
                return json.loads(response.read().decode("utf-8"))
            except ValueError as exc:
                raise ModelLoadError(f"The LLM server at {self.base + path} did not answer JSON ({exc}).") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read().decode("utf-8", "replace")
    except Exception:
        raw = ""
    try:
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        text = error.get("message", error) if isinstance(error, dict) else error
        raw = str(text)
    except ValueError:
        pass
    return (raw or exc.reason or "").strip()[:300]


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent-event stream, until ``[DONE]``."""
    for raw in response:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError:
            continue


def server_status(url: str, api_key: str | None = None, timeout: float = 3.0) -> dict[str, Any]:
    """Whether the server answers ``/v1/models``, and the model names it lists (never raises)."""
    try:
        http = _Http(url, api_key, timeout, 0, 0.0)
        names = [str(m.get("id")) for m in http.get_json("/models").get("data", [])]
    except Exception as exc:
        return {"url": str(url), "reachable": False, "models": [], "error": str(exc)}
    return {"url": http.base, "reachable": True, "models": names, "error": None}


class ServerPromptWriter:
    """Writes prompts with a model on an OpenAI-compatible server (implements :class:`PromptWriter`).

    Args:
        base_url: The server's base, for example ``http://127.0.0.1:8080/v1`` (``/v1`` is added when missing).
        model: The model name to use (must be in ``/v1/models``); "" picks ``preferred`` if listed, else the first.
        preferred: A fallback name to look for (the job's LLM model, ``.gguf`` stripped).
        api_key: Sent as ``Authorization: Bearer``; never shown anywhere.
        timeout: Seconds per request read.
        retries: Extra tries after a refused connection, a timeout, 429 or 5xx.
        backoff: The first pause between tries in seconds (doubled each time).
    """

    backend = "server"

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        preferred: str = "",
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 2,
        backoff: float = 1.0,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
            raise ConfigError("LLM server timeout", timeout, "use a number of seconds from 1 to 3600")
        self._http = _Http(base_url, api_key, timeout, retries, backoff)
        self._model, self._preferred = model.strip(), preferred.strip()
        self._chosen: tuple[str, str] | None = None
        self._system_role = True

    def __repr__(self) -> str:
        return f"ServerPromptWriter({self._http.base!r}, model={self._model!r})"

    @property
    def base_url(self) -> str:
        """The server's base URL (``.../v1``)."""
        return self._http.base

    def _choose(self) -> tuple[str, str]:
        if self._chosen is None:
            listed = self._http.get_json("/models").get("data", [])
            names = [str(m.get("id")) for m in listed if isinstance(m, dict)]
            owners = {str(m.get("id")): str(m.get("owned_by", "")) for m in listed if isinstance(m, dict)}
            if self._model:
                if self._model not in names:
                    raise ModelNotFoundError(
                        f"The LLM server at {self._http.base} has no model {self._model!r}; it lists "
                        f"{', '.join(map(repr, names)) or 'none'}: set LLM server model to one of them."
                    )
                name = self._model
            elif self._preferred in names:
                name = self._preferred
            elif names:
                name = names[0]
            else:
                raise ModelNotFoundError(f"The LLM server at {self._http.base} lists no model in /v1/models.")
            self._chosen = (name, owners.get(name, ""))
        return self._chosen

    @property
    def model_name(self) -> str:
        """The server's name of the model in use (asks ``/v1/models`` once)."""
        return self._choose()[0]

    def load(self) -> None:
        """Check that the server answers and has the model."""
        self._choose()

    def close(self) -> None:
        """Nothing to free here: the server owns the model."""

    def _body(self, request: PromptRequest, seed: int, sampling: SamplingSettings) -> dict[str, Any]:
        name, owner = self._choose()
        instructions, message = build_messages(request, faithfulness=sampling.faithfulness, style=request.style)
        if self._system_role:
            messages = [{"role": "system", "content": instructions}, {"role": "user", "content": message}]
        else:
            messages = [{"role": "user", "content": f"{instructions}\n\n{message}"}]
        eff = sampling.effective()
        body: dict[str, Any] = {
            "model": name,
            "messages": messages,
            "max_tokens": sampling.max_tokens,
            "temperature": eff.temperature,
            "top_p": eff.top_p,
            "seed": seed % _SEED_MODULUS,
            "stop": _STOP,
            "stream": True,
        }
        grammar = grammar_for(request.instruction, request.style)
        kind = owner.lower()
        if kind == "vllm":
            body.update(top_k=eff.top_k, repetition_penalty=eff.repeat_penalty)
            if grammar:
                body["structured_outputs"] = {"grammar": grammar}
        elif kind in ("llamacpp", "me", ""):  # llama.cpp's server says llamacpp, llama-cpp-python's "me"
            body.update(top_k=eff.top_k, repeat_penalty=eff.repeat_penalty)
            if grammar:
                body["grammar"] = grammar
        return body

    def write(
        self,
        request: PromptRequest,
        *,
        seed: int,
        sampling: SamplingSettings = SamplingSettings(),  # noqa: B008
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Write a prompt for ``request`` on the server, with its style's instructions and grammar, cleaned and filtered
        as the local backend's text is (:func:`~interstable.llm.answer.finish_answer`).

        The style's few-shot turns are not sent: with them, llama-cpp-python's server (which reuses the previous
        request's prompt cache) gave the same request and seed different texts (tests/real_models).

        Raises:
            ModelNotFoundError: The server does not list the model.
            ModelLoadError: The server cannot be reached or fails.
            PromptError: The output is empty or a refusal.
            JobInterrupted: ``should_stop`` returned True.
        """
        if not isinstance(request, PromptRequest):
            raise ConfigError("request", request, "use a PromptRequest")
        if not isinstance(sampling, SamplingSettings):
            raise ConfigError("sampling", sampling, "use a SamplingSettings")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("seed", seed, "use an integer (for example derive_seed(image_seed, 'llm'))")
        if should_stop is not None and should_stop():
            raise JobInterrupted("The prompt writing was cancelled before it started.")
        try:
            raw, finish, count = self._stream(self._body(request, seed, sampling), sampling, on_progress, should_stop)
        except ModelLoadError as exc:
            if not self._system_role or "role" not in str(exc).lower():
                raise
            self._system_role = False  # a chat template without a system role (Mistral's): instructions go first
            raw, finish, count = self._stream(self._body(request, seed, sampling), sampling, on_progress, should_stop)
        who = f"{self.model_name} on {self._http.base}"
        return finish_answer(
            raw, cut=finish == "length", request=request, faithfulness=sampling.faithfulness, who=who, n_tokens=count
        )

    def _stream(
        self,
        body: dict[str, Any],
        sampling: SamplingSettings,
        on_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> tuple[str, str, int]:
        parts: list[str] = []
        finish, count = "stop", 0
        try:
            with self._http.open("/chat/completions", body, should_stop) as response:
                for event in _events(response):
                    choices = event.get("choices") or [{}]
                    delta = choices[0].get("delta") or {}
                    piece = delta.get("content") or ""
                    if piece:
                        parts.append(piece)
                        count += 1
                        if on_progress is not None:
                            on_progress(min(count, sampling.max_tokens), sampling.max_tokens)
                    finish = choices[0].get("finish_reason") or finish
                    if should_stop is not None and should_stop():
                        raise JobInterrupted(f"The prompt writing was cancelled after {count} tokens.")
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise ModelLoadError(
                f"The LLM server at {self._http.base} stopped answering while writing ({exc}); {_FIX}."
            ) from None
        return "".join(parts), str(finish), count

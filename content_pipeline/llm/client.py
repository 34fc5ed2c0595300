"""The LLM call through the `openai` SDK: one client per event loop, errors sorted into what the run does next."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpcore2  # noqa: F401  (httpx2 imports it on the first client: ~0.25 s, under the first calls)
import httpx2
import openai

from content_pipeline.configs import ProviderConfig
from content_pipeline.errors import BadInputError, ProviderAuthError, QuotaExhaustedError
from content_pipeline.llm import offline
from content_pipeline.llm.pacing import Pacer, retry_after


@dataclass(frozen=True)
class Completion:
    """What one call returned, with the usage the provider reported."""

    text: str | None
    refusal: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    model: str | None = None  # the model that answered, as the response names it
    cached_tokens: int = 0  # of tokens_in, those the provider's prompt cache served
    written_tokens: int = 0  # of tokens_in, those written to the provider's cache (where it reports them)
    service_tier: str | None = None  # the tier that served it, as the response names it (flex: the batch price)


class CallFailed(Exception):
    """A call that got no usable answer. `transient`: worth another try now (429, 5xx, timeout, dropped
    connection); `retryable`: a later run may try the item again; `retry_after`: what the provider asked
    us to wait; `unknown_outcome`: the provider may have done (and billed) the work before the answer was lost."""

    def __init__(
        self,
        cause: str,
        retryable: bool,
        *,
        transient: bool = False,
        retry_after: float | None = None,
        unknown_outcome: bool = False,
        rate_limited: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(cause)
        self.cause, self.retryable, self.transient = cause, retryable, transient
        self.retry_after, self.unknown_outcome, self.rate_limited = retry_after, unknown_outcome, rate_limited
        self.code = code  # the provider's error code (resource_unavailable: no flex capacity now)


def redact(text: str, settings: ProviderConfig) -> str:
    """`text` with the API key removed, whatever the provider echoed back."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    return text.replace(key, "[redacted]") if key else text


def make_client(settings: ProviderConfig) -> openai.AsyncOpenAI:
    """The async client: the real provider when a key is set, otherwise the in-process offline model.
    The SDK does not retry (max_retries=0): retries live in one layer, generation's, where each attempt
    is reserved against the budget, paced, and counted."""
    if settings.offline:
        return openai.AsyncOpenAI(
            api_key="offline",
            base_url="http://offline.invalid/v1",
            max_retries=0,
            http_client=httpx2.AsyncClient(
                transport=offline.transport(settings.strong_model, settings.offline_latency_ms)
            ),
        )
    assert settings.openai_api_key is not None
    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=settings.request_timeout_s,
    )


PROBE_S = 10.0  # the longest the start of a run waits for the provider's model list


def down(settings: ProviderConfig) -> str | None:
    """Why the provider cannot serve now (it does not answer, or answers GET /models with a 5xx), or None:
    a free look before a run's first call. Any other answer (401, 404) is left for the first call to name."""
    client = openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none",
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=min(settings.request_timeout_s, PROBE_S),
    )
    try:
        client.models.list()
    except openai.APIStatusError as exc:
        return f"GET /models answered {exc.status_code}" if exc.status_code >= 500 else None
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        return redact(f"{_where(settings)} did not answer GET /models ({type(exc).__name__})", settings)
    finally:
        client.close()
    return None


def chat_body(
    settings: ProviderConfig,
    model: str,
    msgs: list[dict[str, str]],
    response_format: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of one chat completion with structured output, as a call sends it and a batch holds it;
    `extra`: the call's own parameters (service_tier, prompt_cache_key)."""
    return {
        "model": model,
        "messages": msgs,
        "response_format": response_format,
        "max_completion_tokens": settings.max_output_tokens,
        "temperature": 0.4,
        **(extra or {}),
    }


def _where(settings: ProviderConfig) -> str:
    return "the offline model" if settings.offline else (settings.openai_base_url or "api.openai.com")


async def complete(
    client: openai.AsyncOpenAI,
    settings: ProviderConfig,
    model: str,
    msgs: list[dict[str, str]],
    response_format: dict[str, Any],
    pacer: Pacer | None = None,
    extra: dict[str, Any] | None = None,
) -> Completion:
    """One chat completion with structured output, one HTTP request; the provider's rate-limit headers go
    to `pacer`. Raises CallFailed, ProviderAuthError, QuotaExhaustedError or BadInputError (unknown model).

    The request goes through `client.post`, the SDK's documented way to send a body as given: the client's
    own base URL, auth, timeout and status errors, as `chat.completions.create` sends it, without walking the
    body against the SDK's TypedDicts and without building its typed response (0.5-0.7 ms of CPU a call,
    2% of a run's throughput at 100 calls/s: BENCHMARKS.md). The answer is read as JSON by `_completion`."""
    body = chat_body(settings, model, msgs, response_format, extra)
    try:
        response = await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
    except openai.APIStatusError as exc:
        if pacer is not None:
            pacer.observe(exc.response.headers)
        raise _status_error(exc, settings, model) from None
    except openai.APITimeoutError:
        raise CallFailed(
            f"timed out after {settings.request_timeout_s:g}s", retryable=True, transient=True, unknown_outcome=True
        ) from None
    except openai.APIConnectionError as exc:
        detail = redact(str(exc.__cause__ or exc), settings)[:120]
        raise CallFailed(
            f"connection to {_where(settings)} failed ({detail})", retryable=True, transient=True, unknown_outcome=True
        ) from None
    try:
        return _completion(response, pacer)
    except ValueError as exc:  # not a chat.completion (a proxy's HTML page, say): a reject, never a loss
        detail = redact(f"{type(exc).__name__}: {exc}", settings)[:300]
        raise CallFailed(f"unexpected answer from {model}: {detail}", retryable=True) from None


def _completion(response: httpx2.Response, pacer: Pacer | None) -> Completion:
    """The chat.completion answer's text, refusal, finish reason and usage; ValueError when the answer
    is not one."""
    data = _object(json.loads(response.content), "the answer")
    usage = _object(data.get("usage") or {}, "its usage")
    if pacer is not None:
        pacer.observe(response.headers, _count(usage.get("total_tokens")))
    return completion_from(data)


def completion_from(data: dict[str, Any]) -> Completion:
    """A chat.completion body's text, refusal, finish reason and usage (a call's answer, or a batch's
    response body); ValueError when it is not one."""
    usage = _object(data.get("usage") or {}, "its usage")
    choices = data.get("choices") or []
    if not isinstance(choices, list):
        raise ValueError("its choices are not a list")
    choice = _object(choices[0] if choices else {}, "its first choice")
    message = _object(choice.get("message") or {}, "its message")
    text, refusal, finish = message.get("content"), message.get("refusal"), choice.get("finish_reason")
    if not all(value is None or isinstance(value, str) for value in (text, refusal, finish)):
        raise ValueError("the chat.completion's content, refusal or finish_reason is not a string")
    return Completion(
        text=text,
        refusal=refusal,
        finish_reason=finish,
        tokens_in=_count(usage.get("prompt_tokens")),
        tokens_out=_count(usage.get("completion_tokens")),
        model=data["model"] if isinstance(data.get("model"), str) and data["model"] else None,
        cached_tokens=cached_tokens(usage),
        written_tokens=written_tokens(usage),
        service_tier=data["service_tier"] if isinstance(data.get("service_tier"), str) else None,
    )


def cached_tokens(usage: dict[str, Any]) -> int:
    """`usage.prompt_tokens_details.cached_tokens` (0 when the provider reports none)."""
    details = usage.get("prompt_tokens_details")
    return _count(details.get("cached_tokens")) if isinstance(details, dict) else 0


def written_tokens(usage: dict[str, Any]) -> int:
    """`usage.prompt_tokens_details.cache_write_tokens` (or at the top of usage), where the provider reports
    the prompt tokens it wrote to its cache; 0 when it reports none."""
    details = usage.get("prompt_tokens_details")
    inner = details.get("cache_write_tokens") if isinstance(details, dict) else None
    return _count(inner if inner is not None else usage.get("cache_write_tokens"))


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object (a chat.completion was expected), got {type(value).__name__}")
    return value


def _count(value: object) -> int:
    """A token count as reported (missing or null: 0)."""
    return int(value) if isinstance(value, int | float) else 0


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return inner.get("code") or inner.get("type") or getattr(exc, "code", None)


def _status_error(exc: openai.APIStatusError, settings: ProviderConfig, model: str) -> Exception:
    """What an HTTP error answer means for the run: stop it, or fail (and maybe retry) this call."""
    status, where = exc.status_code, _where(settings)
    if status == 401:
        return ProviderAuthError(f"the provider at {where} rejected the API key (401): set a valid OPENAI_API_KEY")
    if status == 403:
        return ProviderAuthError(f"the provider at {where} denied access (403) for model {model!r}")
    if status == 404:
        return BadInputError(f"model {model!r} was not found at {where} (404): check MODEL / STRONG_MODEL")
    if status == 429 and _error_code(exc) == "insufficient_quota":
        return QuotaExhaustedError(f"the provider at {where} reports insufficient_quota: the run stopped claiming work")
    wait = retry_after(exc.response.headers)
    if status == 429 and _error_code(exc) == "resource_unavailable":  # the flex tier has no capacity now
        return CallFailed(
            "no capacity at this service tier (429 resource_unavailable)",
            retryable=True,
            transient=True,
            retry_after=wait,
            code="resource_unavailable",
        )
    if status == 429:
        return CallFailed("rate limited (429)", retryable=True, transient=True, retry_after=wait, rate_limited=True)
    detail = redact(str(exc.message), settings)[:160]
    transient = status >= 500 or status in (408, 409)
    return CallFailed(f"provider error {status}: {detail}", retryable=transient, transient=transient, retry_after=wait)

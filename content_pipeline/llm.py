"""The LLM call through the `openai` SDK: one client per event loop, errors sorted into what the run does next."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2
import openai

from content_pipeline import offline
from content_pipeline.errors import BadInputError, ProviderAuthError, QuotaExhaustedError
from content_pipeline.prompts import RESPONSE_FORMAT
from content_pipeline.settings import Settings


@dataclass(frozen=True)
class Completion:
    """What one call returned, with the usage the provider reported."""

    text: str | None
    refusal: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int


class CallFailed(Exception):
    """A call that failed after the SDK's retries; the item is rejected with this cause."""

    def __init__(self, cause: str, retryable: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retryable = retryable


def redact(text: str, settings: Settings) -> str:
    """`text` with the API key removed, whatever the provider echoed back."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    return text.replace(key, "[redacted]") if key else text


def make_client(settings: Settings) -> openai.AsyncOpenAI:
    """The async client: the real provider when a key is set, otherwise the in-process offline model.
    Retries (429 with Retry-After, 5xx, timeouts, dropped connections) live in the SDK alone."""
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
        max_retries=settings.max_retries,
        timeout=settings.request_timeout_s,
    )


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return inner.get("code") or inner.get("type") or getattr(exc, "code", None)


async def complete(
    client: openai.AsyncOpenAI, settings: Settings, model: str, msgs: list[dict[str, str]]
) -> Completion:
    """One chat completion with structured output; raises CallFailed, ProviderAuthError or QuotaExhaustedError."""
    where = "the offline model" if settings.offline else (settings.openai_base_url or "api.openai.com")
    try:
        resp = await client.chat.completions.create(
            model=model,
            messages=msgs,  # type: ignore[arg-type]
            response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
            max_completion_tokens=settings.max_output_tokens,
            temperature=0.4,
        )
    except openai.AuthenticationError:
        raise ProviderAuthError(
            f"the provider at {where} rejected the API key (401): set a valid OPENAI_API_KEY"
        ) from None
    except openai.PermissionDeniedError:
        raise ProviderAuthError(f"the provider at {where} denied access (403) for model {model!r}") from None
    except openai.NotFoundError:
        raise BadInputError(f"model {model!r} was not found at {where} (404): check MODEL / STRONG_MODEL") from None
    except openai.RateLimitError as exc:
        if _error_code(exc) == "insufficient_quota":
            raise QuotaExhaustedError(
                f"the provider at {where} reports insufficient_quota: the run stopped claiming work"
            ) from None
        raise CallFailed(f"rate limited (429) after {settings.max_retries} retries", retryable=True) from None
    except openai.APITimeoutError:
        raise CallFailed(
            f"timed out after {settings.request_timeout_s:g}s and {settings.max_retries} retries", retryable=True
        ) from None
    except openai.APIConnectionError:
        raise CallFailed(f"connection to {where} failed after {settings.max_retries} retries", retryable=True) from None
    except openai.APIStatusError as exc:
        retryable = exc.status_code >= 500
        detail = redact(str(exc.message), settings)[:160]
        raise CallFailed(f"provider error {exc.status_code}: {detail}", retryable=retryable) from None
    choice = resp.choices[0] if resp.choices else None
    usage = resp.usage
    return Completion(
        text=choice.message.content if choice else None,
        refusal=getattr(choice.message, "refusal", None) if choice else None,
        finish_reason=choice.finish_reason if choice else None,
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
    )

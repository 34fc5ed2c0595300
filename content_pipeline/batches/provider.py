"""The provider's Files and Batches API through the `openai` SDK: upload, create, find by metadata, retrieve,
download line by line, cancel; errors sorted into what the run does next."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import openai

from content_pipeline.batches.submit import ENDPOINT
from content_pipeline.configs import ProviderConfig
from content_pipeline.errors import BadInputError, PipelineError, ProviderAuthError, QuotaExhaustedError
from content_pipeline.llm.client import redact

RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
LIST_LIMIT = 10_000  # a listing looks at this many batches at most (the newest first)
T = TypeVar("T")


class BatchApiError(PipelineError):
    """The Files or Batches API did not do what was asked (unreachable, or an error answer)."""


class BatchProvider:
    """One client for a run's Files and Batches calls. The SDK does not retry a create (a lost answer is found
    again by listing, so no batch is ever made twice); reads and uploads it retries."""

    def __init__(self, settings: ProviderConfig) -> None:
        if settings.offline:
            raise BadInputError(
                "GENERATION_MODE=batch needs a provider (OPENAI_API_KEY): the offline model answers calls only"
            )
        assert settings.openai_api_key is not None
        self.settings = settings
        self.client = openai.OpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            max_retries=0,
            timeout=settings.request_timeout_s,
        )
        self.reads = self.client.with_options(max_retries=3)

    def where(self) -> str:
        return self.settings.openai_base_url or "api.openai.com"

    def check(self) -> None:
        """Before anything is planned: the provider has a Batch API (one page of one batch listed); a server
        without one (llama.cpp's, vLLM's) fails with one line saying so."""
        self._call("list the batches", lambda: self.reads.batches.list(limit=1).data)

    def upload(self, name: str, data: bytes) -> str:
        return self._call(
            "upload the batch input", lambda: self.reads.files.create(file=(name, data), purpose="batch").id
        )

    def create(self, file_id: str, metadata: dict[str, str]) -> str:
        def make() -> str:
            return self.client.batches.create(
                input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
            ).id

        return self._call("create the batch", make)

    def find(self, metadata: dict[str, str]) -> str | None:
        """The batch whose metadata holds all of `metadata` (a create whose answer was lost), newest first."""

        def look() -> str | None:
            for seen, batch in enumerate(self.reads.batches.list(limit=100)):
                if seen >= LIST_LIMIT:
                    return None
                found = batch.metadata or {}
                if all(found.get(k) == v for k, v in metadata.items()):
                    return batch.id
            return None

        return self._call("list the batches", look)

    def retrieve(self, batch_id: str) -> Any:
        return self._call(f"retrieve batch {batch_id}", lambda: self.reads.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> Any:
        return self._call(f"cancel batch {batch_id}", lambda: self.reads.batches.cancel(batch_id))

    def lines(self, file_id: str) -> Iterator[bytes]:
        """A result file's lines as they arrive (a big output is never held whole)."""
        try:
            with self.reads.files.with_streaming_response.content(file_id) as response:
                for line in response.iter_lines():
                    if line.strip():
                        yield line.encode()
        except openai.APIError as exc:
            raise self._error(f"download file {file_id}", exc) from None

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except openai.APIError as exc:
            raise self._error(what, exc) from None

    def _error(self, what: str, exc: openai.APIError) -> PipelineError:
        where = self.where()
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 401:
                return ProviderAuthError(
                    f"the provider at {where} rejected the API key (401): set a valid OPENAI_API_KEY"
                )
            if status == 403:
                return ProviderAuthError(f"the provider at {where} denied access (403) to the Batch API")
            if status == 429 and "insufficient_quota" in str(exc.body):
                return QuotaExhaustedError(f"the provider at {where} reports insufficient_quota")
            if status in (404, 405, 501) and what in ("list the batches", "upload the batch input", "create the batch"):
                return BadInputError(
                    f"the provider at {where} has no Batch API ({status} when asked to {what}): GENERATION_MODE=batch "
                    "needs one (OpenAI's); use GENERATION_MODE=sync with this server"
                )
            detail = redact(str(exc.message), self.settings)[:160]
            return BatchApiError(f"could not {what} at {where}: {status} {detail}")
        detail = redact(str(exc.__cause__ or exc), self.settings)[:120]
        return BatchApiError(f"could not {what} at {where}: {detail}")

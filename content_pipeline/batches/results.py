"""A finished batch's answers: its output and error files read line by line, and each request judged as a call's
answer is (QA, near-copies), to an outcome record or a request to escalate."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from content_pipeline.batches.provider import BatchApiError, BatchProvider
from content_pipeline.batches.submit import Wanted
from content_pipeline.claims.pending import BatchPlan, PlannedRequest
from content_pipeline.generation import qa
from content_pipeline.generation.calls import Attempt
from content_pipeline.generation.context import GenerationContext
from content_pipeline.generation.item import Decision, judge, outcome_record
from content_pipeline.generation.templates import load_template
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.records import SCHEMA, Call, OutcomeRecord
from content_pipeline.ledger.scan import ledger_segments, stream_ledger
from content_pipeline.llm.client import CallFailed, completion_from, redact
from content_pipeline.money import to_nano
from content_pipeline.store import Store, layout

RETRYABLE_STATUS = (408, 409, 429)
UNREADABLE = (BatchApiError, openai.APIError, httpx2.HTTPError)  # a download refused, or broken off mid-read


@dataclass(frozen=True)
class Answer:
    """What the batch says of one request: the response (status and body) or the error that kept it from
    running (expired, cancelled)."""

    status: int | None
    body: dict[str, Any] | None
    error: dict[str, Any] | None


def answers(lines: Iterator[bytes]) -> Iterator[tuple[str, Answer]]:
    """custom_id and answer of each line of a result file (a line that is not one is skipped)."""
    for raw in lines:
        try:
            row = json.loads(raw)
            response = row.get("response") or {}
            status = response.get("status_code")
            yield (
                str(row["custom_id"]),
                Answer(int(status) if status is not None else None, response.get("body"), row.get("error")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue


@dataclass
class ResultFiles:
    """A finished batch's output and error files, read as the answers arrive. `missing` says why the batch's
    answers cannot all be read: the provider reports answered requests (request_counts.completed) that the
    output file does not give (no file, a download that failed, lines that do not parse), or its error file
    could not be read whole (a download refused or broken off)."""

    provider: BatchProvider
    batch: Any
    answered: int = 0  # answers read from the output file
    failed: str | None = None  # why the output file's download failed
    errors_failed: str | None = None  # why the error file's download failed

    def answers(self) -> Iterator[tuple[str, Answer]]:
        output, errors = self.batch.output_file_id, self.batch.error_file_id
        if output:
            self.failed = yield from self._read(output, counted=True)
        if errors:
            self.errors_failed = yield from self._read(errors, counted=False)

    def _read(self, file_id: str, counted: bool) -> Generator[tuple[str, Answer], None, str | None]:
        """The file's answers as they arrive; returns why its download failed (None once it read whole)."""
        try:
            for found in answers(self.provider.lines(file_id)):
                if counted:
                    self.answered += 1
                yield found
        except UNREADABLE as exc:
            if isinstance(exc, BatchApiError):
                return str(exc)
            detail = redact(str(exc) or type(exc).__name__, self.provider.settings)[:160]
            return f"could not download file {file_id} at {self.provider.where()}: {detail}"
        return None

    def missing(self) -> str | None:
        """Why some of the batch's answers cannot be read (None when every one was)."""
        completed = int(getattr(self.batch.request_counts, "completed", 0) or 0)
        output, errors = self.batch.output_file_id, self.batch.error_file_id
        if self.answered < completed:
            if not output:
                return f"the provider reports {completed} answered request(s) and gives no output file"
            if self.failed:
                return f"its output file {output} could not be read ({self.failed})"
            return f"its output file {output} gives {self.answered} readable answer(s) of the {completed} reported"
        if self.errors_failed:
            return f"its error file {errors} could not be read ({self.errors_failed})"
        return None


def recorded_ids(store: Store, run_id: str) -> set[str]:
    """The record ids the ledger holds for the run (its own segments read, the id column only)."""
    ids: set[str] = set()
    segments = [info for info in ledger_segments(store) if info.key.startswith(layout.ledger_dir(run_id))]
    schema = {name: SCHEMA[name] for name in ("id", "slug", "status")}
    stream_ledger(store, lambda frame: ids.update(frame["id"].to_list()), segments=segments, schema=schema)
    return ids


def resumed(slug: str, record_id: str, calls: list[Call]) -> Attempt:
    """The item's attempt so far, under its record id: the calls paid before, their cost and tokens."""
    attempt = Attempt(slug, record_id=record_id, calls=list(calls))
    attempt.sent = len(calls)
    attempt.spent_nano = sum(to_nano(call.cost_usd) for call in calls)
    attempt.tokens_in = sum(call.tokens_in for call in calls)
    attempt.tokens_out = sum(call.tokens_out for call in calls)
    attempt.tokens_cached = sum(call.tokens_cached for call in calls)
    return attempt


def _failure(answer: Answer | None, batch_status: str) -> CallFailed:
    """Why a request has no answer to judge: an error answer, not run (expired, cancelled), or missing."""
    if answer is None:
        return CallFailed(f"batch {batch_status}: no answer for the request", retryable=True)
    if answer.error:
        code = str(answer.error.get("code") or "error")
        return CallFailed(f"batch {batch_status}: {code}: {answer.error.get('message') or 'not run'}", retryable=True)
    inner = (answer.body or {}).get("error") or {}
    message = str(inner.get("message") if isinstance(inner, dict) else inner)[:160]
    status = answer.status or 0
    return CallFailed(f"provider error {status}: {message}", retryable=status >= 500 or status in RETRYABLE_STATUS)


def judged(
    ctx: GenerationContext,
    store: Store,
    plan: BatchPlan,
    request: PlannedRequest,
    answer: Answer | None,
    batch_status: str,
) -> OutcomeRecord | Wanted:
    """One request's outcome: a success or a reject record, or (QA failed on the first model) the request
    to escalate, with the call it paid."""
    item = Item.model_validate(request.item)
    template = load_template(store, request.template)
    attempt = resumed(request.slug, request.record_id, request.calls)
    decision = Decision(qa.Verdict(False, "not_attempted", ""), plan.model, template, tried=plan.attempt)
    if answer is not None and answer.status == 200 and answer.body is not None:
        try:
            completion = completion_from(answer.body)
        except ValueError as exc:
            completion = None
            failure = CallFailed(f"unexpected answer from {plan.model}: {str(exc)[:200]}", retryable=True)
        if completion is not None:
            cost = ctx.prices.cost_nano(
                plan.model, completion.tokens_in, completion.tokens_out, completion.cached_tokens, batch=True
            )
            attempt.book(plan.model, completion, cost)
            decision.model = completion.model or plan.model
            # the canary its prompt carried (none in a plan made before canaries: the verbatim check only)
            decision.content, decision.verdict = judge(completion, item, attempt, template, plan.canary)
            if not decision.verdict.ok and plan.attempt == 1:
                verdict = decision.verdict
                return Wanted(item, request.template, attempt.calls, request.record_id, request.started_at, verdict)
            return outcome_record(ctx, item, attempt, decision, request.started_at)
    else:
        failure = _failure(answer, batch_status)
    attempt.book(plan.model, failure, 0)  # a request that did not run, or answered with an error, is not billed
    decision.verdict, decision.retryable = qa.Verdict(False, "provider_error", failure.cause), failure.retryable
    return outcome_record(ctx, item, attempt, decision, request.started_at)

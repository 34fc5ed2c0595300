"""An outcome record: one QA decision about one item in one run, the line the ledger holds for it."""

from __future__ import annotations

import secrets
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, Field

from content_pipeline.ledger.checksum import sign


def new_record_id() -> str:
    """The id of an outcome, chosen before its first call (its intents name it): unique to this one
    generation of the item, even in a run resumed under the same run id."""
    return secrets.token_hex(16)


class Call(BaseModel):
    """One paid LLM call that went into an outcome."""

    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    outcome: str
    tokens_cached: int = 0  # of tokens_in, those the provider's prompt cache served (at the cached price)
    provider: str | None = None  # a fallback call's provider (its base URL) once the primary was down; else None


class OutcomeRecord(BaseModel):
    """One QA decision about one item in one run."""

    id: str
    run_id: str
    slug: str
    status: Literal["success", "reject"]
    content: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    retryable: bool = False
    model: str
    prompt_template: str
    prompt_version: str
    input_hash: str
    tokens_in: int = Field(ge=0)
    tokens_out: int = Field(ge=0)
    tokens_cached: int = Field(0, ge=0, description="of tokens_in, those served from the provider's prompt cache")
    cost_usd: float = Field(ge=0)
    attempt: int = Field(ge=1)
    escalated: bool = False
    calls: list[Call] = Field(default_factory=list)
    run_budget_usd: float
    offline: bool = False
    source_fields: list[str] = Field(default_factory=list)
    sketch: list[int] = Field(default_factory=list, description="near-copy fingerprint of the content")
    restored_from: str | None = Field(
        None, description="the earlier success this one restores (its item changed back to those inputs): no call"
    )
    started_at: str
    finished_at: str

    def line(self) -> bytes:
        """The record as one ledger line, its checksum as the last field."""
        return sign(self.model_dump_json(exclude_none=False).encode())


def valid_record(line: str) -> bool:
    """True when the line is a whole outcome record."""
    try:
        OutcomeRecord.model_validate_json(line)
    except ValueError:
        return False
    return True


# The columns the views and the audit need; a scan decodes only these (the full record stays in its line).
SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "run_id": pl.String(),
    "slug": pl.String(),
    "status": pl.String(),
    "error": pl.String(),
    "reason": pl.String(),
    "retryable": pl.Boolean(),
    "tokens_in": pl.Int64(),
    "tokens_out": pl.Int64(),
    "tokens_cached": pl.Int64(),
    "cost_usd": pl.Float64(),
    "run_budget_usd": pl.Float64(),
    "finished_at": pl.String(),
    "input_hash": pl.String(),
}

"""The one settings object: read from the environment and `.env` once, at the edge, and passed in."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from content_pipeline.errors import BadInputError
from content_pipeline.prices import DEFAULT_PRICES, ModelPrice
from content_pipeline.publish_settings import PublishSettings
from content_pipeline.urls import carries_credentials, credentials_refusal

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
Scope = Literal["all", "promo", "changed"]
GenerationMode = Literal["sync", "batch"]
ServiceTier = Literal["auto", "default", "flex", "priority"]
BatchEscalate = Literal["batch", "sync"]
MAX_LIMIT = 10_000_000  # items one run may claim
MAX_BUDGET_USD = 1_000_000.0  # the largest run budget a setting or parameter takes
BATCH_MAX_REQUESTS = 50_000  # the Batch API's limits on one batch: requests, and bytes of its input file
BATCH_MAX_BYTES = 200 * 1024 * 1024
Baseline = Literal["median7", "weekday"]
Reward = Literal[
    "ctr", "qa_pass", "clicks", "impressions", "visitors", "pageviews", "time_on_page", "scroll_depth", "shares"
]
ENV_FILE_VARIABLE = "CONTENT_PIPELINE_ENV_FILE"  # which dotenv file settings read (".env"); empty: none
URL_CREDENTIALS = "url_credentials"  # the error type of a URL setting refused for its credentials
MAX_REPLAY_HOURS = 720  # replay-failed's widest window (30 days): the CLI and the flow's form refuse wider


def sample_catalogue() -> str:
    """Path of the bundled sample catalogue."""
    return str(resources.files("content_pipeline") / "sample" / "catalogue.jsonl")


def new_run_id() -> str:
    """A unique run id: UTC time plus random, e.g. 20261123T004500Z-3f9a1c."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id):
        raise BadInputError(
            f"RUN_ID {run_id!r} is invalid: use 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit"
        )
    return run_id


class Settings(PublishSettings):
    """Every setting, with the runbooks' environment names (case-insensitive) and its default."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, allow_inf_nan=False, hide_input_in_errors=True
    )

    store_url: str = Field("./data", description="Where artifacts live: a folder path or file:// URL")
    rescue_dir: str = Field(
        default_factory=lambda: os.path.join(tempfile.gettempdir(), "content-pipeline-rescue"),
        description="Local folder for answered outcomes the store would not take (imported by the next run)",
    )
    catalogue: str = Field(default_factory=sample_catalogue, description="Catalogue path or URL (JSONL, CSV, Parquet)")
    scope: Scope = Field(
        "all", description="all: every item; promo: promo items only; changed: only items changed since their success"
    )
    regenerate_changed: bool = Field(
        True,
        description="An item whose template, MODEL or fields changed since its success needs content again "
        "(the new version replaces the old in master once it passes QA; the old stays in the ledger)",
    )
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Most items one run claims")] = 1000
    max_invalid_rows_share: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="A run fails before any spend when more than this share of the catalogue rows it read "
            "are invalid (a wrong path or a broken export); an empty catalogue, or one with no valid row, always fails",
        ),
    ] = 0.5
    budget_usd: Annotated[float, Field(gt=0, le=MAX_BUDGET_USD, description="Hard ceiling on one run's spend, USD")] = (
        250.0
    )
    daily_budget_usd: Annotated[
        float,
        Field(
            gt=0,
            le=10 * MAX_BUDGET_USD,
            description="Ceiling on one UTC day's spend, USD: a run that could pass it is refused",
        ),
    ] = 1000.0
    item_budget_usd: Annotated[float, Field(gt=0, le=1000, description="Ceiling on one item's calls, USD")] = 0.05
    min_item_cost_usd: Annotated[
        float | None,
        Field(
            ge=0,
            le=1000,
            description="Budget guard: USD per item a batch must be able to pay; unset: each item's worst case "
            "(its prompt plus MAX_OUTPUT_TOKENS on MODEL, plus an escalation on STRONG_MODEL, at PRICE_TABLE's prices)",
        ),
    ] = None
    run_id: str | None = Field(None, description="Run id; made unique (UTC time + random) when not given")
    consolidate_every: Annotated[
        int, Field(ge=0, le=1_000_000, description="Consolidate every N successes (0: off)")
    ] = 50
    evidence_only: bool = Field(False, description="Probe mode: read-only, no LLM spend")
    model: str = Field("gpt-4o-mini", description="Model for the first attempt")
    strong_model: str = Field("gpt-4o", description="Model for the escalation attempt")
    openai_api_key: SecretStr | None = Field(None, description="API key; unset means the offline model")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible base URL")
    service_tier: ServiceTier = Field(
        "auto",
        description="The provider's service tier for calls made at once: flex is billed at the batch price, "
        "slower, and may answer 429 resource_unavailable; auto sends none",
    )
    flex_then_auto: bool = Field(
        False, description="A call flex has no capacity for (past its retries) is sent again at the auto tier"
    )
    prompt_cache_key: bool = Field(
        True,
        description="Send each call's prompt template as prompt_cache_key, so calls sharing a prefix hit the cache",
    )
    fallback_model: str | None = Field(
        None,
        description="Where calls go once the provider is down (5xx, timeouts, resource_unavailable past their "
        "retries): this model, under the same budget (it needs a PRICE_TABLE price); unset: no fallback",
    )
    fallback_base_url: str | None = Field(
        None, description="The fallback's OpenAI-compatible base URL; unset: the primary's (OPENAI_BASE_URL)"
    )
    fallback_api_key: SecretStr | None = Field(None, description="The fallback's API key; unset: OPENAI_API_KEY")
    aws_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO...); unset for AWS S3")
    aws_region: str | None = Field(None, description="AWS region of the S3 store; unset: the AWS default chain")
    aws_access_key_id: SecretStr | None = Field(None, description="AWS key id; unset: the standard AWS chain")
    aws_secret_access_key: SecretStr | None = Field(None, description="AWS secret key; unset: the AWS chain")
    offline_latency_ms: Annotated[int, Field(ge=0, le=60_000, description="Offline model latency per call, ms")] = 0
    concurrency: Annotated[int, Field(ge=1, le=1000, description="LLM calls in flight at most")] = 16
    chunk_size: Annotated[int, Field(ge=1, le=10_000, description="Items per Prefect generation task")] = 50
    max_output_tokens: Annotated[int, Field(ge=64, le=128_000, description="max_tokens of one call")] = 800
    generation_mode: GenerationMode = Field(
        "sync",
        description="sync: calls now; batch: the run's requests go to the Batch API (half price, results within "
        "24 h) and `collect` settles them",
    )
    batch_escalate: BatchEscalate = Field(
        "batch", description="How collect escalates a batch answer that fails QA: a follow-up batch, or a call now"
    )
    batch_max_requests: Annotated[
        int, Field(ge=1, le=BATCH_MAX_REQUESTS, description="Most requests in one batch (a bigger run is split)")
    ] = BATCH_MAX_REQUESTS
    batch_max_bytes: Annotated[
        int, Field(ge=1024, le=BATCH_MAX_BYTES, description="Most bytes of one batch's input file (split above)")
    ] = BATCH_MAX_BYTES
    max_retries: Annotated[
        int, Field(ge=0, le=10, description="Retries of one call on 5xx, timeouts and dropped connections")
    ] = 3
    max_rate_limit_retries: Annotated[
        int, Field(ge=0, le=100, description="Retries of one call after a 429, each after the wait it asks for")
    ] = 10
    request_timeout_s: Annotated[float, Field(gt=0, le=3600, description="Timeout of one LLM call, s")] = 60.0
    price_table: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES), description="USD per 1M tokens by model (JSON)"
    )
    llm_global_limits: bool = Field(False, description="Take Prefect global concurrency/rate limits per LLM call")
    llm_rate_limit_name: str = Field("llm-requests", description="Prefect rate limit (slot decay) per LLM request")
    llm_concurrency_limit_name: str = Field("llm-concurrency", description="Prefect limit on LLM calls in flight")
    heartbeat_s: Annotated[
        float, Field(gt=0, le=3600, description="A long stage's heartbeat log line every N s (no terminal)")
    ] = 30.0
    lease_ttl_s: Annotated[float, Field(gt=0, le=86400, description="Batch-builder lease lifetime, s")] = 60.0
    lease_wait_s: Annotated[
        float, Field(ge=0, le=3600, description="How long go-live waits for a busy batch builder, s")
    ] = 30.0
    claim_ttl_s: Annotated[
        float, Field(gt=0, le=7 * 86400, description="How long a run's claims live without it, s")
    ] = 6 * 3600.0
    backup_url: str | None = Field(None, description="Where the daily backup goes: a folder or s3://bucket/prefix")
    backup_signing_key: SecretStr | None = Field(
        None,
        description="Signs each backup's record (HMAC-SHA256, 16+ characters); when set, restore --from-backup "
        "refuses a backup whose record is unsigned or fails its signature",
    )
    view_backups_keep: Annotated[
        int, Field(ge=1, le=1000, description="How many view snapshots a restore keeps (the newest)")
    ] = 10
    sweep_grace_s: Annotated[
        float,
        Field(
            ge=0,
            le=86400,
            description="Sweep: how long past its expiry a lease or claims held on another host are kept, s",
        ),
    ] = 60.0

    engagement_sources: str = Field(
        "",
        description="Which engagement sources `engagement pull` reads, comma-separated: plausible (PLAUSIBLE_*), "
        "search-console (SEARCH_CONSOLE_*) or a PlausibleSite/SearchConsoleProperty block's name; empty: every "
        "source the settings configure",
    )
    plausible_url: str = Field("https://plausible.io", description="The Plausible server's base URL")
    plausible_site_id: str | None = Field(None, description="The site's domain as registered in Plausible")
    plausible_api_key: SecretStr | None = Field(None, description="A Plausible Stats API key")
    search_console_site_url: str | None = Field(
        None, description="The Search Console property: https://shop.example/ or sc-domain:shop.example"
    )
    search_console_key: SecretStr | None = Field(
        None, description="The service account's JSON key for Search Console: its text, or the path of its file"
    )
    search_console_api: str = Field(
        "https://searchconsole.googleapis.com", description="The Search Console API's base URL"
    )
    engagement_drop_alert: Annotated[
        float,
        Field(
            gt=0,
            lt=1,
            description="A metric down by more than this share on a source's newest complete day, against its "
            "baseline, is red in health (overall or in one template, category or slot)",
        ),
    ] = 0.3
    engagement_min_baseline: Annotated[
        float,
        Field(
            ge=0,
            le=1e9,
            description="A baseline below this (visitors, clicks, ... of the day) is too small to call a drop on",
        ),
    ] = 50.0
    engagement_baseline: Baseline = Field(
        "median7", description="median7: the median of the 7 complete days before; weekday: the same day a week before"
    )
    template_reward: Reward = Field(
        "ctr",
        description="What template-rank rewards, per post: ctr (clicks per impression, Search Console) or one "
        "metric (visitors, time_on_page, ...) over the post's first TEMPLATE_REWARD_DAYS complete days; qa_pass: "
        "whether each item's last outcome passed QA (no analytics needed)",
    )
    template_reward_days: Annotated[
        int, Field(ge=1, le=90, description="A post counts in template-rank once this many of its days are complete")
    ] = 7
    template_min_posts: Annotated[
        int, Field(ge=5, le=100_000, description="Posts a template needs before template-rank compares it")
    ] = 20
    template_alpha: Annotated[
        float,
        Field(
            gt=0,
            le=0.2,
            description="template-rank's error rate: the chance, however often it is checked, that it ever names "
            "a winner between templates that are in truth alike",
        ),
    ] = 0.05

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        return None if value in (None, "") else check_run_id(value)

    @field_validator(
        "store_url",
        "catalogue",
        "openai_base_url",
        "fallback_base_url",
        "aws_endpoint_url",
        "backup_url",
        "wp_url",
        "publish_webhook_url",
        "plausible_url",
        "search_console_api",
    )
    @classmethod
    def _no_credentials(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and carries_credentials(value):
            raise PydanticCustomError(URL_CREDENTIALS, credentials_refusal(str(info.field_name).upper()))
        return value

    @field_validator("openai_api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None or not value.get_secret_value().strip() else value

    @field_validator("backup_signing_key")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if len(value.get_secret_value()) < 16:
            raise PydanticCustomError("short_key", "use at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @model_validator(mode="after")
    def _fallback_priced(self) -> Settings:
        if self.fallback_model is not None and self.fallback_model not in self.price_table:
            raise ValueError(
                f"FALLBACK_MODEL {self.fallback_model!r} has no price in PRICE_TABLE: its worst cases could not be "
                "reserved against the budget"
            )
        return self

    @model_validator(mode="after")
    def _batch_needs_a_provider(self) -> Settings:
        if self.generation_mode == "batch" and self.openai_api_key is None:
            raise ValueError(
                "GENERATION_MODE=batch needs a provider (OPENAI_API_KEY): the offline model answers calls only"
            )
        return self

    @property
    def regenerates_changed(self) -> bool:
        """True when done items changed since their success are generated again (REGENERATE_CHANGED, or
        scope changed)."""
        return self.regenerate_changed or self.scope == "changed"

    def fallback(self) -> Settings | None:
        """The settings a fallback call is made with (its base URL and key in place of the primary's), or None
        when FALLBACK_MODEL is unset or the run is offline."""
        if self.fallback_model is None or self.offline:
            return None
        return self.model_copy(
            update={
                "openai_base_url": self.fallback_base_url or self.openai_base_url,
                "openai_api_key": self.fallback_api_key or self.openai_api_key,
            }
        )

    @property
    def offline(self) -> bool:
        """True when no API key is configured: the in-process offline model answers."""
        return self.openai_api_key is None

    def s3_options(self) -> dict[str, str | None]:
        """Endpoint, region and keys for S3 (store and catalogue); None values come from the AWS chain."""
        key, secret = self.aws_access_key_id, self.aws_secret_access_key
        return {
            "endpoint_url": self.aws_endpoint_url,
            "region": self.aws_region,
            "access_key": key.get_secret_value() if key else None,
            "secret_key": secret.get_secret_value() if secret else None,
        }

    def with_run_id(self) -> Self:
        """These settings with a run id, made unique when none was given."""
        return self if self.run_id else self.model_copy(update={"run_id": new_run_id()})


S = TypeVar("S", bound=Settings)


def load_settings(cls: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]
    """Settings (or the front door's subclass `cls`) from the environment and `.env` (the file
    CONTENT_PIPELINE_ENV_FILE names; empty: none, as the test suite sets it), with the non-None `overrides`
    (CLI flags, a flow run's parameters) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    env_file = os.environ.get(ENV_FILE_VARIABLE, ".env") or None
    try:
        return cls(_env_file=env_file, **given)  # type: ignore[call-arg]
    except SettingsError as exc:  # a complex setting (PRICE_TABLE) that is not valid JSON
        raise BadInputError(f"settings: {str(exc).splitlines()[0]}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a rule across settings: its message, never the input (it holds every setting)
            raise BadInputError(f"settings: {str(err['msg']).removeprefix('Value error, ')}") from None
        if err["type"] == URL_CREDENTIALS:  # its message names the setting; the URL is never shown
            raise BadInputError(f"setting {err['msg']}") from None
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        shown = "" if any(word in name for word in ("KEY", "PASSWORD", "SECRET")) else f" (got {err.get('input')!r})"
        raise BadInputError(f"setting {name}: {err['msg']}{shown}") from None

"""The parts of the settings each concern takes: the one Settings object, read at the edge, is each of
these; a module that declares one reads nothing else of it (tests/project/test_layout.py checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pydantic import SecretStr

    from content_pipeline.posting_plan import PostingPlan
    from content_pipeline.prices import ModelPrice
    from content_pipeline.publish_settings import Missed, PublishApproval, WpStatus
    from content_pipeline.settings import Baseline, BatchEscalate, GenerationMode, Reward


class StoreConfig(Protocol):
    """Where the store is, and whether this run may write to it."""

    store_url: str
    evidence_only: bool

    def s3_options(self) -> dict[str, str | None]: ...


class LeaseConfig(Protocol):
    """How long leases and claims live, how long a busy lease is waited for, and the sweep's grace."""

    lease_ttl_s: float
    lease_wait_s: float
    claim_ttl_s: float
    sweep_grace_s: float


class ProviderConfig(Protocol):
    """The LLM provider: where, with which key, how long a call may take (offline without a key)."""

    openai_api_key: SecretStr | None
    openai_base_url: str | None
    request_timeout_s: float
    offline_latency_ms: int
    max_output_tokens: int
    strong_model: str

    @property
    def offline(self) -> bool: ...


class PricingConfig(Protocol):
    """What a run may spend and what its calls cost: models, prices, ceilings, the Batch API's limits."""

    model: str
    strong_model: str
    price_table: dict[str, ModelPrice]
    max_output_tokens: int
    generation_mode: GenerationMode
    batch_escalate: BatchEscalate
    budget_usd: float
    daily_budget_usd: float
    min_item_cost_usd: float | None
    batch_max_requests: int
    batch_max_bytes: int


class PlanConfig(Protocol):
    """The posting plan and the target it is kept on (publishing, health's queue check, the KPI report)."""

    publish_target: str
    publish_plan: str

    def posting_plan(self) -> PostingPlan | None: ...


class QualityConfig(Protocol):
    """The quality gate a post passes before it goes out."""

    publish_min_words: int
    publish_max_words: int
    publish_min_readability: float
    publish_near_copy: float
    publish_forbidden_phrases: str


class PublishConfig(LeaseConfig, PlanConfig, QualityConfig, Protocol):
    """Publishing: the target and its credentials, governance, approval, retries, the posting plan and its
    watchdog, the quality gate, and the catalogue the posts are made from."""

    run_id: str | None
    catalogue: str
    publish_target: str
    publish_max_posts: int
    publish_approval: PublishApproval
    publish_approval_timeout_s: float
    publish_max_retries: int
    publish_timeout_s: float
    publish_failure_spike: float
    publish_spike_min_attempts: int
    publish_missed: Missed
    publish_missed_grace_min: float
    wp_url: str | None
    wp_user: str | None
    wp_app_password: SecretStr | None
    wp_status: WpStatus
    wp_fallback_category: str
    publish_webhook_url: str | None
    publish_webhook_secret: SecretStr | None

    def publish_signals(self) -> dict[str, str | None]: ...

    def s3_options(self) -> dict[str, str | None]: ...


class RecoveryConfig(LeaseConfig, Protocol):
    """Restores and health: how many view snapshots are kept, the backup signing key, the day's ceiling."""

    view_backups_keep: int
    backup_signing_key: SecretStr | None
    daily_budget_usd: float


class EngagementConfig(Protocol):
    """Engagement: the built-in sources' settings, drop detection's rules, and template-rank's reward."""

    engagement_sources: str
    plausible_url: str
    plausible_site_id: str | None
    plausible_api_key: SecretStr | None
    search_console_site_url: str | None
    search_console_key: SecretStr | None
    search_console_api: str
    engagement_drop_alert: float
    engagement_min_baseline: float
    engagement_baseline: Baseline
    template_reward: Reward
    template_reward_days: int
    template_min_posts: int
    template_alpha: float


class HealthConfig(RecoveryConfig, EngagementConfig, PlanConfig, Protocol):
    """What health reads: recovery's settings, engagement's drop rules and the posting plan."""


class BatchConfig(PricingConfig, ProviderConfig, Protocol):
    """The Batch API's plans and escalations: what they cost, and the provider they go to."""

"""The publishing settings: the target and its credentials, governance, approval, retries, the failure spike,
the posting plan and the quality gate (a part of the one Settings object, content_pipeline/settings.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from content_pipeline.posting_plan import PostingPlan, parse_plan

PublishApproval = Literal["signals", "ui", "fallback"]
WpStatus = Literal["draft", "publish"]
Missed = Literal["publish", "report"]


class PublishSettings(BaseSettings):
    """The PUBLISH_* and WP_* settings (read with every other setting, by Settings)."""

    publish_target: str = Field(
        "wordpress", description="Where publish sends: wordpress (WP_*), webhook (PUBLISH_WEBHOOK_*) or a block's name"
    )
    publish_max_posts: Annotated[int, Field(ge=1, le=10000, description="Most posts one publish run sends")] = 20
    allow_autonomous_publish: str | None = Field(None, description="Governance signal 1 of 3 (true/1/yes)")
    publish_approval_granted: str | None = Field(None, description="Governance signal 2 of 3 (true/1/yes)")
    governance_approved: str | None = Field(None, description="Governance signal 3 of 3 (true/1/yes)")
    publish_approval: PublishApproval = Field(
        "signals",
        description="signals: the three signals decide; ui: the publish flow waits for an approver; fallback: "
        "it waits for one when a post's content was written by FALLBACK_MODEL",
    )
    publish_approval_timeout_s: Annotated[
        float, Field(gt=0, le=7 * 86400, description="How long the publish flow waits for an approver, s")
    ] = 3600.0
    publish_max_retries: Annotated[
        int, Field(ge=0, le=20, description="Retries of one publish call after a 429, a 5xx or a dropped connection")
    ] = 4
    publish_timeout_s: Annotated[float, Field(gt=0, le=600, description="Timeout of one publish call, s")] = 30.0
    publish_failure_spike: Annotated[
        float,
        Field(
            gt=0,
            lt=1,
            description="When more than this share of the last hour's live publish attempts failed, publishing "
            "halts itself on every worker until `publish resume`",
        ),
    ] = 0.05
    publish_spike_min_attempts: Annotated[
        int,
        Field(
            ge=1,
            le=10_000,
            description="Live attempts the last hour needs before a failure spike is called (20: one failure in "
            "20 is the 5%, so a lone failure of a small run does not halt everything)",
        ),
    ] = 20
    publish_plan: str = Field(
        "",
        description="The posting plan: the day's time slots and a timezone, e.g. `09:00,13:00,17:00 Europe/Berlin`; "
        "each publish run fills the next 24 h of slots (WordPress `future` posts); empty: posts go out as sent",
    )
    publish_missed: Missed = Field(
        "publish",
        description="A scheduled post not live once its slot has passed (WP-Cron did not run): publish it "
        "(publish) or only report it (report)",
    )
    publish_missed_grace_min: Annotated[
        float, Field(ge=0, le=1440, description="How long after its slot a scheduled post may take to go live, min")
    ] = 5.0
    publish_min_words: Annotated[
        int, Field(ge=0, le=100_000, description="Quality gate: fewest words a post's body may have (0: no bound)")
    ] = 40
    publish_max_words: Annotated[
        int, Field(ge=0, le=1_000_000, description="Quality gate: most words a post's body may have (0: no bound)")
    ] = 2000
    publish_min_readability: Annotated[
        float,
        Field(
            ge=0,
            le=100,
            description="Quality gate: lowest Flesch reading ease of a post's body (30: college level; 0: off)",
        ),
    ] = 30.0
    publish_near_copy: Annotated[
        float,
        Field(
            gt=0,
            le=1,
            description="Quality gate: a body this similar (Jaccard of word 3-shingles) to another live post's is "
            "held as a near-copy (1: off)",
        ),
    ] = 0.8
    publish_forbidden_phrases: str = Field(
        "",
        description="Quality gate: phrases no post's title, body or excerpt may hold, comma-separated "
        "(case-insensitive, whole words)",
    )
    wp_url: str | None = Field(None, description="The WordPress site's base URL (its REST API is under /wp-json)")
    wp_user: str | None = Field(None, description="The WordPress user that publishes")
    wp_app_password: SecretStr | None = Field(None, description="That user's application password")
    wp_status: WpStatus = Field("draft", description="The status of a post WordPress gets: draft or publish")
    wp_fallback_category: str = Field(
        "Uncategorized", description="The category of a post whose own is missing and may not be created"
    )
    publish_webhook_url: str | None = Field(None, description="The webhook target's URL (a JSON POST per post)")
    publish_webhook_secret: SecretStr | None = Field(None, description="The webhook's HMAC-SHA256 signing secret")

    def publish_signals(self) -> dict[str, str | None]:
        """The three governance signals as given (publish/governance.py reads them)."""
        return {
            "ALLOW_AUTONOMOUS_PUBLISH": self.allow_autonomous_publish,
            "PUBLISH_APPROVAL_GRANTED": self.publish_approval_granted,
            "GOVERNANCE_APPROVED": self.governance_approved,
        }

    @field_validator("publish_plan")
    @classmethod
    def _plan(cls, value: str) -> str:
        parse_plan(value)  # a ValueError names what is wrong
        return value.strip()

    def posting_plan(self) -> PostingPlan | None:
        """PUBLISH_PLAN as a plan; None when there is none."""
        return parse_plan(self.publish_plan)

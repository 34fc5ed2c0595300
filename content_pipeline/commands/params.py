"""Every command's parameters, with their bounds and descriptions declared once: the CLI's flags and the
flows' forms are both made from these models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from content_pipeline.engagement.days import SOURCE
from content_pipeline.ops.choices import Kind, Period
from content_pipeline.settings import MAX_REPLAY_HOURS, RUN_ID_PATTERN, Settings
from content_pipeline.store import layout

_SETTING = Settings.model_fields
MAX_PULL_DAYS = 540  # Search Console keeps 16 months
ModeChoice = Literal["default", "sync", "batch"]  # a choice in the UI's form (an optional string is free text)
ViewName = Literal[tuple(layout.VIEW_FILES)]  # type: ignore[valid-type]


def _like(setting: str, description: str | None = None) -> Any:
    """A field with the setting's bounds, default and description (or `description`)."""
    field = _SETTING[setting]
    bounds = {k: getattr(m, k) for m in field.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    finite = {"allow_inf_nan": False} if field.annotation is float else {}
    return Field(field.default, description=description or field.description, **finite, **bounds)


ScopeField = Annotated[Literal["all", "promo", "changed"], _like("scope")]
LimitField = Annotated[int, _like("limit", "Most items this run claims")]
BudgetField = Annotated[float, _like("budget_usd", "Hard spend ceiling of this run, USD")]


def _run_id(value: object) -> object:
    """An empty run id is none; a malformed one is refused with what a run id may hold."""
    if value == "":
        return None
    if isinstance(value, str) and not RUN_ID_PATTERN.match(value):
        raise ValueError("use 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit")
    return value


RunIdField = Annotated[
    Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN.pattern)] | None,
    BeforeValidator(_run_id),
    Field(description="Run id; a unique one (UTC time + random) is made when empty"),
]
ModeField = Annotated[
    ModeChoice,
    Field(
        description="sync: calls now; batch: the Batch API at half price, settled by collect; default: GENERATION_MODE"
    ),
]
JSON_FLAG = "json"  # the CLI's --json: how a command's records are printed, not a parameter of the command


class Params(BaseModel):
    """A command's parameters. `SETTINGS` maps a parameter to the setting it overrides (the CLI: when given;
    a flow run: always, as its form sends every field); `POSITIONAL` are the CLI's positional arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SETTINGS: ClassVar[dict[str, str]] = {}
    POSITIONAL: ClassVar[tuple[str, ...]] = ()

    def overrides(self, given_only: bool) -> dict[str, Any]:
        """The settings these parameters set: `given_only`, those given explicitly (a flag on the command
        line); else every one (a flow run's form)."""
        values = self.model_dump(exclude_unset=given_only)
        found = {self.SETTINGS[k]: _setting_value(v) for k, v in values.items() if k in self.SETTINGS}
        return {k: v for k, v in found.items() if v is not None}

    def filled(self, settings: Settings) -> Params:
        """These parameters with each setting-backed one as `settings` have it (what a flow run is sent)."""
        return self.model_copy(update={k: getattr(settings, v) for k, v in self.SETTINGS.items()})


def _setting_value(value: Any) -> Any:
    """A parameter's value as its setting's: "default" and False are "not given" (the setting stands)."""
    return None if value is False or value == "default" else value


class NoParams(Params):
    """A command that takes no parameters."""


class RunParams(Params):
    """A stage of a run by hand: which items, how many, at what ceiling, under which run id."""

    SETTINGS: ClassVar[dict[str, str]] = {k: k for k in ("scope", "limit", "budget_usd", "run_id")}
    scope: ScopeField = _SETTING["scope"].default
    limit: LimitField = _SETTING["limit"].default
    budget_usd: BudgetField = _SETTING["budget_usd"].default
    run_id: RunIdField = None


class GenerateParams(RunParams):
    """A run that generates: sync calls or the Batch API."""

    SETTINGS: ClassVar[dict[str, str]] = {**RunParams.SETTINGS, "mode": "generation_mode"}
    mode: ModeField = "default"


class ReplayParams(GenerateParams):
    """replay-failed: the window of rejects generated again."""

    since_hours: Annotated[
        float,
        Field(gt=0, le=MAX_REPLAY_HOURS, allow_inf_nan=False, description="The window: rejects of the last N hours"),
    ] = 24.0
    include_qa: Annotated[bool, Field(description="QA and content-policy rejects too, not only transient ones")] = False


class SweepParams(Params):
    SETTINGS: ClassVar[dict[str, str]] = {"dry_run": "evidence_only"}
    dry_run: Annotated[bool, Field(description="Name what would be released; release nothing")] = False


class PublishParams(Params):
    SETTINGS: ClassVar[dict[str, str]] = {
        "target": "publish_target",
        "max_posts": "publish_max_posts",
        "run_id": "run_id",
    }
    target: Annotated[
        str | None, Field(description="wordpress, webhook, or a publish target block's name; PUBLISH_TARGET when empty")
    ] = None
    max_posts: Annotated[int, _like("publish_max_posts", "Most posts this run sends")] = _SETTING[
        "publish_max_posts"
    ].default
    dry_run: Annotated[bool, Field(description="Show the plan and the governance decision; send nothing")] = False
    run_id: RunIdField = None


class HaltParams(Params):
    reason: Annotated[str, Field(max_length=1000, description="Why: shown by every publish until resume")] = ""


class QuarantineParams(Params):
    """quarantine: the damaged ledger records, accepting a loss; or an item taken down and held."""

    SETTINGS: ClassVar[dict[str, str]] = {"target": "publish_target"}
    POSITIONAL: ClassVar[tuple[str, ...]] = ("slug",)
    slug: Annotated[str | None, Field(description="Take this item's post down and hold it from publishing")] = None
    reason: Annotated[str, Field(max_length=1000, description="With SLUG: why it comes down (recorded)")] = ""
    trash: Annotated[bool, Field(description="With SLUG: trash the post instead of turning it to draft")] = False
    target: Annotated[str | None, Field(description="With SLUG: the target its post is on (PUBLISH_TARGET)")] = None
    require_approval_hours: Annotated[
        float | None,
        Field(
            gt=0,
            le=720,
            allow_inf_nan=False,
            description="With SLUG: require an approver's yes in the UI for every publish run for this many hours "
            "(a --reason naming a policy incident requires it for 48)",
        ),
    ] = None
    accept_loss: Annotated[
        str | None,
        Field(
            description="Accept the loss of the damaged record at WHERE ('<segment>: line N', or all): its slug "
            "is generated again by the next run"
        ),
    ] = None

    @model_validator(mode="after")
    def _one_thing(self) -> QuarantineParams:
        if self.slug is not None and self.accept_loss is not None:
            raise ValueError("give a SLUG or --accept-loss, not both")
        if self.slug is None and self.require_approval_hours is not None:
            raise ValueError("--require-approval-hours goes with a SLUG taken down")
        return self


class ApproveParams(Params):
    until: Annotated[
        datetime | None,
        Field(
            description="Approve live publishing until this time (ISO 8601; UTC when no zone is given): it stands "
            "for PUBLISH_APPROVAL_GRANTED, and nothing goes out live after it"
        ),
    ] = None
    close: Annotated[bool, Field(description="End the release window now")] = False
    reason: Annotated[str, Field(max_length=1000, description="Why (kept with the window)")] = ""

    @model_validator(mode="after")
    def _one_thing(self) -> ApproveParams:
        if (self.until is None) == (not self.close):
            raise ValueError("give --until TIME or --close")
        return self


class ReleaseParams(Params):
    POSITIONAL: ClassVar[tuple[str, ...]] = ("slug",)
    slug: Annotated[str, Field(min_length=1, description="The item let go: published again by the next run")]


class BackupParams(Params):
    to: Annotated[
        str | None, Field(description="The backup store (a folder or s3://bucket/prefix); BACKUP_URL when empty")
    ] = None
    list: Annotated[bool, Field(description="List the backups recorded in the store (or in the `source` store)")] = (
        False
    )
    source: Annotated[str | None, Field(description="With list: the backup store whose backups are listed")] = None

    @model_validator(mode="after")
    def _one_thing(self) -> BackupParams:
        if self.list and self.to is not None:
            raise ValueError("give `to` or `list`, not both")
        if self.source is not None and not self.list:
            raise ValueError("`source` goes with `list`")
        return self


class RestoreParams(Params):
    dry_run: Annotated[bool, Field(description="Say what would change; change nothing")] = False
    list: Annotated[bool, Field(description="List the view snapshots kept by earlier restores")] = False
    snapshot: Annotated[str | None, Field(description="Roll the views back to this kept snapshot (its id)")] = None
    from_backup: Annotated[
        str | None,
        Field(
            description="Bring a whole store back from a backup store (its newest backup, every object checked first)"
        ),
    ] = None

    @model_validator(mode="after")
    def _one_thing(self) -> RestoreParams:
        given = [n for n, v in (("dry_run", self.dry_run), ("list", self.list)) if v]
        given += [n for n, v in (("snapshot", self.snapshot), ("from_backup", self.from_backup)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"give one of dry_run, list, snapshot and from_backup, not {' and '.join(given)}")
        return self


class ReportParams(Params):
    POSITIONAL: ClassVar[tuple[str, ...]] = ("kind",)
    kind: Annotated[Kind, Field(description="kpi: outcomes and rates; cost: spend and tokens")] = "kpi"
    period: Annotated[Period, Field(description="The period, against the one before it")] = "daily"


class TemplateRankParams(Params):
    period: Annotated[
        Period, Field(description="The period whose QA outcomes and cost are shown beside the reward")
    ] = "30d"
    apply: Annotated[
        bool,
        Field(
            description="Promote the leader and retire the templates the evidence shows worse (only what clears "
            "TEMPLATE_ALPHA's bar; nothing changes without enough evidence)"
        ),
    ] = False
    as_of: Annotated[
        date | None,
        Field(
            description="Decide on the figures known at the end of this UTC day (a past check replayed); today when empty"
        ),
    ] = None


class TemplatesParams(Params):
    add: Annotated[
        str | None, Field(description="A JSON file (id, version, system, user, fields): stored, and made active")
    ] = None


class EngagementPullParams(Params):
    SETTINGS: ClassVar[dict[str, str]] = {"sources": "engagement_sources"}
    since_days: Annotated[
        int,
        Field(ge=1, le=MAX_PULL_DAYS, description="Pull the last N days (today included): late data revises them"),
    ] = 7
    sources: Annotated[
        str | None,
        Field(
            max_length=1000,
            description="Which sources, comma-separated: plausible, search-console or a source block's name; "
            "ENGAGEMENT_SOURCES when empty",
        ),
    ] = None


class EngagementImportParams(Params):
    POSITIONAL: ClassVar[tuple[str, ...]] = ("file",)
    file: Annotated[
        str,
        Field(
            min_length=1,
            description="A CSV, JSONL or Parquet file: one row per post and day (README: engagement import)",
        ),
    ]
    source: Annotated[
        str, Field(pattern=SOURCE, description="What its rows are logged under when they name no source")
    ] = "import"


class RollbackParams(Params):
    to: Annotated[
        str | None,
        Field(
            max_length=200,
            description="The id of a recorded change (`templates` lists them): its active set comes back; the set "
            "before the newest change when empty",
        ),
    ] = None


class ViewParams(Params):
    POSITIONAL: ClassVar[tuple[str, ...]] = ("view",)
    view: Annotated[ViewName, Field(description="Which view")]

"""The catalogue: every command by name, with its help, parameter model and function, and how the front
doors may run it (as a flow, from the terminal through its flow, with --json)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from content_pipeline.commands.context import CommandFn
from content_pipeline.commands.params import (
    ApproveParams,
    BackupParams,
    EngagementImportParams,
    EngagementPullParams,
    GenerateParams,
    HaltParams,
    NoParams,
    Params,
    PublishParams,
    QuarantineParams,
    ReleaseParams,
    ReplayParams,
    ReportParams,
    RestoreParams,
    RollbackParams,
    RunParams,
    SweepParams,
    TemplateRankParams,
    TemplatesParams,
    ViewParams,
)


@dataclass(frozen=True)
class Command:
    """One command. `flow`: the name of its Prefect flow (None: the terminal's only); `routed`: the terminal
    runs it as that flow when a Prefect API is configured (RUN_MODE); `json`: it has records for --json;
    `run_id`: it runs under a run id (made unique when none is given)."""

    name: str
    help: str
    params: type[Params]
    target: str  # its function, `module:name` under content_pipeline.commands (imported when it is run)
    flow: str | None = None
    routed: bool = False
    json: bool = False
    run_id: bool = False
    threads: bool = False  # its flow runs generation chunks: a task runner with many threads
    about: str = ""  # what its flow's page says (its function's docstring when empty)

    @property
    def fn(self) -> CommandFn:
        module, _, name = self.target.partition(":")
        return getattr(import_module(f"content_pipeline.commands.{module}"), name)  # type: ignore[no-any-return]

    @property
    def doc(self) -> str:
        return (self.about or self.fn.__doc__ or self.help).strip()


def _run(
    name: str, help: str, params: type[Params], about: str, *, threads: bool = False, run_id: bool = True
) -> Command:
    return Command(name, help, params, "runs:run_stage", name, routed=True, run_id=run_id, threads=threads, about=about)


COMMANDS: tuple[Command, ...] = (
    _run(
        "go-live",
        "the whole run: inventory, batch, preflight, generate, consolidate, audit, sync, audit",
        GenerateParams,
        "inventory, batch, preflight, generate, consolidate, audit, sync, audit; with a run report. A failure names "
        "the stage and the spend so far, for the notification that announces it.",
        threads=True,
    ),
    _run(
        "replay-failed",
        "generate again the transient rejects of the last N hours (--include-qa: QA ones too)",
        ReplayParams,
        "The rejects of the window whose cause is transient (rate limit, timeout, server error, dropped connection, "
        "budget stop, quota), claimed again and generated under the budget; with include_qa, the QA and "
        "content-policy rejects too. A go-live run over exactly those items, with its report.",
        threads=True,
    ),
    _run(
        "inventory",
        "read the catalogue: which items need content",
        RunParams,
        "Which items need content; writes the run's needs-content and invalid-row reports.",
    ),
    _run(
        "batch",
        "claim up to --limit items of the run's inventory",
        RunParams,
        "Claim up to LIMIT of the run's inventory under the batch-builder lease (fails at once when held).",
    ),
    _run(
        "preflight",
        "filter the run's batch; refuse when the budget is too low",
        RunParams,
        "Filter the run's batch and apply the budget guard.",
    ),
    _run(
        "generate",
        "generate the run's batch with the LLM",
        GenerateParams,
        "Generate the run's preflighted batch, then release its claims.",
        threads=True,
    ),
    _run(
        "consolidate",
        "rebuild master, indexes, usage and checkpoint from the ledger",
        NoParams,
        "Rebuild master, indexes, usage and checkpoint from the ledger (idempotent); views changed by hand are "
        "written again.",
        run_id=False,
    ),
    _run(
        "audit",
        "check every invariant; non-zero exit on a violation",
        NoParams,
        "Check every invariant; fails with one line per violation.",
        run_id=False,
    ),
    _run("sync", "rewrite the checkpoint from master", NoParams, "Rewrite the checkpoint from master.", run_id=False),
    _run(
        "sweep",
        "release the leases and queued claims of runs that are gone, naming each",
        SweepParams,
        "Release the leases and queued claims of runs that are gone (expired past SWEEP_GRACE_S, or whose "
        "process is gone from this host), naming each: their items need content again.",
        run_id=False,
    ),
    _run(
        "collect",
        "settle the finished Batch API batches into the ledger; show those still running",
        NoParams,
        "Poll the outstanding Batch API batches; settle the finished ones into the ledger (QA, escalations as "
        "BATCH_ESCALATE says, expired requests as retryable rejects), then consolidate, audit and sync.",
        run_id=False,
    ),
    Command(
        "publish",
        "publish consolidated successes to a target, simulated unless governance says live; halt, resume",
        PublishParams,
        "publishing:publish",
        "publish",
        routed=True,
        run_id=True,
    ),
    Command(
        "publish halt",
        "halt publishing everywhere (--reason: shown until resume)",
        HaltParams,
        "publishing:halt_command",
    ),
    Command("publish resume", "lift a halt", NoParams, "publishing:resume_command"),
    Command(
        "publish approve",
        "approve live publishing until a time (--until), or end the window (--close); later runs simulate",
        ApproveParams,
        "publishing:approve_command",
    ),
    Command(
        "publish watch",
        "halt publishing everywhere when over PUBLISH_FAILURE_SPIKE of the last hour's live attempts failed",
        NoParams,
        "publishing:watch_command",
        "publish-watch",
    ),
    Command("status", "counts from the store (read-only, quick)", NoParams, "operations:status_command", json=True),
    Command(
        "progress",
        "remaining work, share done, the last hour's rate and the time to finish",
        NoParams,
        "operations:progress_command",
        "progress",
        json=True,
    ),
    Command(
        "health",
        "every check green, amber or red with one line each; exit 0 green, 1 amber, 2 red",
        NoParams,
        "operations:health_command",
        "health",
        json=True,
    ),
    Command("view", "print one current master view (read-only)", ViewParams, "operations:view_command"),
    Command(
        "backup",
        "copy the ledger, views and publishing's state to another store, incrementally, checked, signed",
        BackupParams,
        "recovery:backup_command",
        "backup",
    ),
    Command(
        "restore",
        "keep the views, release what gone runs left, write back lost records, rebuild, sync, audit",
        RestoreParams,
        "recovery:restore_command",
        "restore",
    ),
    Command(
        "report",
        "KPI or cost figures of a period against the prior one; stored with PNG charts",
        ReportParams,
        "operations:report_command",
        "report",
        json=True,
    ),
    Command(
        "template-rank",
        "compare the active templates on readers' response per post (always-valid test); --apply promotes/retires",
        TemplateRankParams,
        "operations:template_rank_command",
        "template-rank",
        json=True,
    ),
    Command(
        "templates",
        "list the prompt templates (active ones marked); --add FILE stores and activates a version",
        TemplatesParams,
        "operations:templates_command",
    ),
    Command(
        "templates rollback",
        "bring back the last known good active template set (--to ID: the set a recorded change made)",
        RollbackParams,
        "operations:templates_rollback_command",
    ),
    Command(
        "quarantine",
        "damaged ledger records (--accept-loss releases their slugs); SLUG --reason: take a post down",
        QuarantineParams,
        "publishing:quarantine_command",
        json=True,
    ),
    Command("quarantine release", "let an item held from publishing go", ReleaseParams, "publishing:release_command"),
    Command(
        "engagement pull",
        "pull each published post's figures per day from the analytics sources (a re-pull appends nothing)",
        EngagementPullParams,
        "engagement:pull_command",
        "engagement-pull",
    ),
    Command(
        "engagement import",
        "append figures per post and day from a CSV, JSONL or Parquet file (GA4, Matomo, social insights)",
        EngagementImportParams,
        "engagement:import_command",
    ),
    Command(
        "engagement drops",
        "each source's newest complete day against its baseline; exit 2 when a count fell past the alert",
        NoParams,
        "engagement:drops_command",
        "engagement-drops",
    ),
)
CATALOGUE: dict[str, Command] = {c.name: c for c in COMMANDS}

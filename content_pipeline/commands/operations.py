"""The read-mostly operations as catalogue commands: status, progress, health, view, report, template-rank
and templates (a report and a ranking are stored unless the store is read-only)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from content_pipeline.commands.context import Context
from content_pipeline.commands.outcome import Artifact, Line, Outcome, said
from content_pipeline.commands.params import (
    NoParams,
    ReportParams,
    RollbackParams,
    TemplateRankParams,
    TemplatesParams,
    ViewParams,
)
from content_pipeline.errors import BadInputError, StoreError
from content_pipeline.generation.templates import PromptTemplate, add_template, read_active, stored_templates
from content_pipeline.ops.health import Check, Health, health
from content_pipeline.ops.progress import progress, progress_line
from content_pipeline.ops.reports import build_report, report_key, terminal, write_report
from content_pipeline.ops.rollback import history, rollback
from content_pipeline.ops.status import status, status_lines
from content_pipeline.ops.template_rank import decide, rank_templates, record_decision
from content_pipeline.views.snapshot import has_view, stream_view

HEALTH_LEVELS = {"green": "info", "amber": "warning", "red": "error"}
SHOWN_CHANGES = 10  # the newest changes of the active template set `templates` lists


def status_command(ctx: Context, params: NoParams) -> Outcome:
    """Counts from the store (read-only, quick)."""
    settings = ctx.settings
    result = status(ctx.store(read_only=True), settings.catalogue, settings.s3_options())
    return Outcome(True, "status read", tuple(Line(t) for t in status_lines(result)), records=(result,))


def progress_command(ctx: Context, params: NoParams) -> Outcome:
    """Remaining work, the share done, the last hour's rate and the time to finish."""
    figures = progress(ctx.store(read_only=True), ctx.settings.catalogue, ctx.settings.s3_options())
    line = progress_line(figures)
    return Outcome(True, line, (Line(line),), records=(figures,))


def health_command(ctx: Context, params: NoParams) -> Outcome:
    """Every check green, amber or red with one line each: exit 0 green, 1 amber, 2 red; a flow run fails
    on red only (the failure automation announces it)."""
    try:
        store = ctx.store()
    except StoreError as exc:  # the store does not answer: red, and nothing else can be read
        result = Health([Check("store", "red", str(exc))])
    else:
        result = health(store, ctx.settings, probes=ctx.probes)
    summary = f"health {result.level}: " + ("; ".join(result.faults()) or "every check green")
    lines = tuple(Line(check.line(), HEALTH_LEVELS[check.level]) for check in result.checks)
    lines += (Line(f"health: {result.level}", HEALTH_LEVELS[result.level]),)
    artifact = Artifact("health", markdown=result.markdown(), description=f"health: {result.level}")
    return Outcome(result.level != "red", summary, lines, (result.to_dict(),), (artifact,), exit_code=result.exit_code)


def view_command(ctx: Context, params: ViewParams) -> Outcome:
    """One current master view, streamed to the terminal (a master file may be gigabytes)."""
    store = ctx.store(read_only=True)
    if not has_view(store, params.view):
        line = "no views are published yet: run `content-pipeline consolidate` (or go-live)"
        return Outcome(False, line, (Line(f"error: {line}", "error", err=True),))
    return Outcome(True, f"view {params.view}", stream=lambda out: stream_view(store, params.view, out))


def report_command(ctx: Context, params: ReportParams) -> Outcome:
    """KPI or cost figures of a period against the prior one (a KPI report's audience too); stored with PNG
    charts (unless read-only)."""
    store = ctx.store()
    report = build_report(store, params.kind, params.period, plan=ctx.settings.posting_plan())
    if not store.read_only:
        write_report(store, report)
    where = f"{store.url}/{report.files['markdown']}" if report.files else None
    lines = [terminal(report)]
    if where is not None:
        lines.append(f"report: stored in {where.rsplit('/', 1)[0]}/ with its charts")
    key = report_key(report)
    artifacts = (
        Artifact(key, markdown=report.markdown(store.url, embed=True), description=report.title()),
        Artifact(f"{key}-table", table=report.rows(), description=report.title()),
    )
    summary = f"{report.title()}: " + (f"stored in {where}" if where else "not stored (the store is read-only)")
    records = (report.to_dict(),)  # printed with default=str, as the terminal always printed it
    return Outcome(True, summary, tuple(Line(t) for t in lines), records, artifacts)


def template_rank_command(ctx: Context, params: TemplateRankParams) -> Outcome:
    """Compare the active prompt templates on the measured reward per post with an always-valid sequential
    test; record the decision with its evidence (unless read-only), and with apply change the active set, only
    where the evidence clears the bar."""
    store = ctx.store()
    ranking = rank_templates(store, ctx.settings, params.period, params.as_of)
    if not store.read_only:
        ranking = decide(store, ranking, params.apply)
    rows = [
        {"template": r.template, "active": r.active, "posts": r.posts, "mean_reward": r.mean, "sd": r.sd}
        | {"qa": r.qa.line(), "note": r.note}
        for r in ranking.rows
    ]
    artifacts = (
        Artifact("template-rank", markdown="\n".join(f"- {line}" for line in ranking.lines())),
        Artifact("template-rank-evidence", table=rows, description=ranking.verdict),
    )
    lines = tuple(Line(t) for t in ranking.lines())
    return Outcome(True, f"{ranking.verdict}; {ranking.lines()[-1]}", lines, (ranking.to_dict(),), artifacts)


def templates_command(ctx: Context, params: TemplatesParams) -> Outcome:
    """The prompt templates, active ones marked, and the newest changes of the active set (their ids are what
    `templates rollback --to` takes); with add, a template file stored and made active (a recorded change)."""
    store = ctx.store()
    lines = []
    if params.add is not None:
        template = _template_file(params.add)
        before, _ = read_active(store)
        stored = add_template(store, template)
        after, _ = read_active(store)
        if after != before:
            record_decision(store, {"kind": "add", "applied": True, "template": template.key}, before, after, True)
        lines.append(f"templates: {template.key} {'stored' if stored else 'already stored'} and active")
    active, _ = read_active(store)
    for key in stored_templates(store):
        lines.append(f"{key}  {'active, weight ' + str(active[key]) if key in active else 'inactive'}")
    changes = history(store)
    lines += [f"change {c.line()}" for c in changes.changes[-SHOWN_CHANGES:]]
    lines += [f"damaged decision record, not trusted: {d}" for d in changes.damaged]
    return said(True, f"{len(active)} active template(s)", *lines)


def templates_rollback_command(ctx: Context, params: RollbackParams) -> Outcome:
    """The active set brought back to the last known good one (before the newest change that made it), or to
    the set change `to` made; recorded as a decision."""
    lines = rollback(ctx.store(), params.to)
    return said(True, lines[-2] if len(lines) > 1 else lines[-1], *lines)


def _template_file(path: str) -> PromptTemplate:
    """The template in the JSON file at `path`, or one line naming what is wrong with it."""
    try:
        return PromptTemplate.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise BadInputError(f"templates --add {path}: {exc.strerror}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "".join(f"{loc}: " for loc in err["loc"][:1])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise BadInputError(f"templates --add {path}: {where}{msg}: nothing stored") from None

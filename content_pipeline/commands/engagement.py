"""The engagement commands: `engagement pull` from the configured sources, `engagement import FILE`, and
`engagement drops`, the drop check alone (red fails its flow run, which the failure automation announces)."""

from __future__ import annotations

from content_pipeline.commands.context import Context
from content_pipeline.commands.outcome import Artifact, Line, Outcome
from content_pipeline.commands.params import EngagementImportParams, EngagementPullParams, NoParams
from content_pipeline.engagement.check import drop_check
from content_pipeline.engagement.pull import import_file, pull_sources
from content_pipeline.engagement.source import EngagementSourceError

LEVELS = {"green": "info", "amber": "warning", "red": "error"}
NONE_CONFIGURED = (
    "no engagement source is configured: set PLAUSIBLE_SITE_ID and PLAUSIBLE_API_KEY, SEARCH_CONSOLE_SITE_URL "
    "and SEARCH_CONSOLE_KEY, or ENGAGEMENT_SOURCES to the names of source blocks"
)


def pull_command(ctx: Context, params: EngagementPullParams) -> Outcome:
    """Each source's figures for the published posts over the last N days, appended once: a re-pull appends
    nothing, late data revises a day once. A source that fails is named, and the others are pulled."""
    sources = ctx.sources()
    names = [n.strip() for n in (params.sources or "").split(",") if n.strip()] or sources.default_names()
    if not names:
        raise EngagementSourceError(NONE_CONFIGURED)
    store = ctx.store()
    pulled = pull_sources(store, [sources.source(name) for name in names], params.since_days)
    lines = tuple(Line(f"engagement pull: {t}", "error" if ": failed: " in t else "info") for t in pulled.lines)
    if pulled.failed:
        return Outcome(False, f"engagement pull: {', '.join(pulled.failed)} failed (the others were pulled)", lines)
    return Outcome(True, f"engagement pull: {'; '.join(pulled.lines)}", lines)


def import_command(ctx: Context, params: EngagementImportParams) -> Outcome:
    """The file's rows for published posts appended once; a bad row refuses the file, naming it."""
    lines = import_file(ctx.store(), params.file, params.source)
    return Outcome(
        True, f"engagement import: {'; '.join(lines)}", tuple(Line(f"engagement import: {t}") for t in lines)
    )


def drops_command(ctx: Context, params: NoParams) -> Outcome:
    """Each source's newest complete day against its baseline, overall and by template, category and slot:
    exit 2 (a failed flow run) when a count fell past ENGAGEMENT_DROP_ALERT, 1 when log lines are damaged."""
    found = drop_check(ctx.store(), ctx.settings)
    lines = tuple(
        Line(f"engagement: {t}", LEVELS[found.level] if i == 0 else "info") for i, t in enumerate(found.lines())
    )
    table = found.rows()
    artifacts = (Artifact("engagement-drops", table=table, description=found.line()),) if table else ()
    code = {"green": 0, "amber": 1, "red": 2}[found.level]
    return Outcome(
        found.level != "red", f"engagement {found.level}: {found.line()}", lines, artifacts=artifacts, exit_code=code
    )

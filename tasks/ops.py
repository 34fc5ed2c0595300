"""What the operations' flow runs publish: their results as Prefect artifacts and run log lines."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from content_pipeline.ops.health import Health
from content_pipeline.ops.reports import Report
from content_pipeline.ops.template_rank import Ranking
from content_pipeline.publish.publisher import PublishResult

_LEVELS = {"green": logging.INFO, "amber": logging.WARNING, "red": logging.ERROR}


def publish_health(result: Health) -> None:
    """Each check a log line at its level (red an error), and the whole as the `health` artifact."""
    logger = get_run_logger()
    for check in result.checks:
        logger.log(_LEVELS[check.level], "%s", check.line())
    create_markdown_artifact(markdown=result.markdown(), key="health", description=f"health: {result.level}")


def report_key(report: Report) -> str:
    """The report's markdown artifact key: `kpi-daily-report`, `cost-30-day-report`, ..."""
    return f"{report.kind}-{report.period}-report".replace("30d", "30-day")


def publish_report(report: Report, store_url: str) -> None:
    """The report as markdown, its charts shown inline (images the Prefect UI renders) and named in the
    store, and its headline rows as a table."""
    key = report_key(report)
    create_markdown_artifact(markdown=report.markdown(store_url, embed=True), key=key, description=report.title())
    create_table_artifact(table=report.rows(), key=f"{key}-table", description=report.title())
    get_run_logger().info("%s: stored in %s/%s", report.title(), store_url, report.files.get("markdown", "-"))


def publish_ranking(ranking: Ranking) -> None:
    """The ranking's lines as markdown and its evidence as a table."""
    create_markdown_artifact(markdown="\n".join(f"- {line}" for line in ranking.lines()), key="template-rank")
    rows = [
        {
            "template": r.template,
            "n": r.n,
            "pass_rate": r.pass_rate,
            "cost_per_success_usd": r.cost_per_success_usd,
            "note": r.note,
        }
        for r in ranking.rows
    ]
    create_table_artifact(table=rows, key="template-rank-evidence", description=ranking.lines()[0])


def publish_lines(key: str, lines: list[str]) -> None:
    """An operation's lines in the run's log and as a markdown artifact."""
    logger = get_run_logger()
    for line in lines:
        logger.info("%s: %s", key, line)
    create_markdown_artifact(markdown="\n".join(f"- {line}" for line in lines), key=key)


def publish_outcome(result: PublishResult) -> None:
    """A publish run's lines in the log (a stop or a failure as an error) and as the `publish` artifact."""
    logger = get_run_logger()
    for line in result.lines():
        logger.info("publish: %s", line)
    if result.stopped:
        logger.error("publish stopped: %s", result.stopped)
    create_markdown_artifact(
        markdown="\n".join(f"- {line}" for line in result.lines()), key="publish", description=result.lines()[0]
    )

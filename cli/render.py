"""An outcome in the terminal: a run's report, then its lines (stdout, or stderr for failures), or its
records as JSON lines; the exit code."""

from __future__ import annotations

import json
import sys

from content_pipeline.commands.outcome import Outcome


def show(outcome: Outcome, as_json: bool = False) -> int:
    """Print `outcome` and return its exit code."""
    if outcome.report is not None:
        print(outcome.report.markdown())
    if outcome.stream is not None:
        outcome.stream(sys.stdout.buffer)
    if as_json and outcome.records is not None:
        for record in outcome.records:
            print(json.dumps(record, sort_keys=True, default=str))
        return outcome.code
    for line in outcome.lines:
        print(line.text, file=sys.stderr if line.err else sys.stdout)
    return outcome.code

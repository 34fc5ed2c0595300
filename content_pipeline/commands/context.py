"""What a front door hands a command: the resolved settings, and the services only it can provide (the
reporter a run reports through, publishing's targets and approver, health's extra probes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from content_pipeline.settings import Settings
from content_pipeline.store import Store, store_for

if TYPE_CHECKING:
    from content_pipeline.commands.outcome import Outcome
    from content_pipeline.engagement.connect import Sources
    from content_pipeline.ops.health import Probe
    from content_pipeline.publish.command import Publishing
    from content_pipeline.run.reporter import Reporter


@dataclass(frozen=True)
class Context:
    """One command's world: its name, settings and services."""

    command: str
    settings: Settings
    reporter: Reporter
    publishing: Publishing
    probes: Sequence[Probe] = ()
    engagement: Sources | None = None  # the front door's engagement sources (None: the settings' built-in ones)

    def sources(self) -> Sources:
        from content_pipeline.engagement.connect import SettingsSources

        return self.engagement if self.engagement is not None else SettingsSources(self.settings)

    def store(self, read_only: bool | None = None) -> Store:
        """The settings' store: read-only when asked, else under EVIDENCE_ONLY."""
        return store_for(self.settings, read_only=read_only)


CommandFn = Callable[[Context, Any], "Outcome"]  # a command: the context and its parameter model, to its outcome

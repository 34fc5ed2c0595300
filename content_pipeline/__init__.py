"""content-pipeline core: the Prefect-free domain package (ledger, store, generation, QA, views)."""

from __future__ import annotations

__version__ = "0.1.0"

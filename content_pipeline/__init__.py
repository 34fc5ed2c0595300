"""content-pipeline core: the Prefect-free domain package (store, ledger, claims, views, intake, generation,
llm, run, ops), with the rehearsal server beside it."""

from __future__ import annotations

__version__ = "0.1.0"

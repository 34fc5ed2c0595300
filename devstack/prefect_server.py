"""`prefect server start` for the local stacks, its SQLite transactions taken IMMEDIATE (Prefect 3.8.8 begins
them DEFERRED: under worker polling a read-then-write transaction loses its upgrade, "database is locked")."""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any


def take_sqlite_write_lock_first() -> None:
    """Every explicit transaction of the server's SQLite begins IMMEDIATE: it waits its turn for the write
    lock (SQLite's busy timeout) instead of failing when another writer commits between its read and its
    write. Prefect does this already where it says `with_for_update` (upstream PR 22967, for the same error
    in `mark_deployments_ready`); the worker channel's heartbeats and the work-queue polls still begin
    DEFERRED in 3.8.8 and log that error on a busy stack. PostgreSQL is not touched."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    deferred = AioSqliteConfiguration.begin_transaction
    if getattr(deferred, "immediate", False):
        return

    @asynccontextmanager
    async def immediate(self: Any, session: Any, with_for_update: bool = False) -> AsyncGenerator[Any, None]:
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    immediate.immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = immediate  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    """`python -m devstack.prefect_server ARGS`: `prefect server start ARGS` (foreground: the server's app runs
    in this process, so the change above holds for it)."""
    take_sqlite_write_lock_first()
    from prefect.cli import app

    sys.argv = ["prefect", "server", "start", *argv]
    sys.exit(app())


if __name__ == "__main__":
    main(sys.argv[1:])

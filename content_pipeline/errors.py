"""The exceptions the pipeline raises on purpose, each carrying one clear line for the operator."""

from __future__ import annotations


class PipelineError(Exception):
    """An expected failure: its message is the one line an operator sees."""

    exit_code = 1


class BadInputError(PipelineError):
    """Input the run cannot go on with (a setting, a flag, a missing catalogue)."""

    exit_code = 2


class StoreError(PipelineError):
    """The store refused an operation for a reason a retry will not fix."""


class StoreIOError(StoreError):
    """A transient store failure (disk, network): worth a retry."""


class LedgerUnwritableError(StoreError):
    """The ledger would not take an append, even when tried again: the run stops putting calls in flight."""


class ReadOnlyViolation(StoreError):
    """A write attempted while the run is read-only (EVIDENCE_ONLY)."""


class CatalogueRefusedError(PipelineError):
    """The catalogue is empty, has no valid row, or too many invalid ones: the run stops before any spend."""


class LeaseHeldError(PipelineError):
    """Another live process holds the lease."""


class LeaseLostError(PipelineError):
    """This process's lease was taken over while it was paused (a frozen VM, SIGSTOP, a long GC): it stops
    before its next effect or append, which the new holder makes instead. Never retried."""


class BudgetRefusedError(PipelineError):
    """The budget guard refused the run before any spend."""


class ProviderAuthError(PipelineError):
    """The LLM provider rejected the API key: nothing can be generated."""


class QuotaExhaustedError(PipelineError):
    """The LLM provider reports insufficient_quota: the run stops claiming work."""


class AuditFailedError(PipelineError):
    """One or more invariants do not hold."""

"""The ledger: immutable outcome records appended durably the moment QA decides; the one source of truth."""

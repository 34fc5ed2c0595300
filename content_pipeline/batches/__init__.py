"""The Batch API: a run's requests planned, submitted once, collected into the ledger."""

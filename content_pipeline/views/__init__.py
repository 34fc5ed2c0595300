"""Views derived from the ledger (master successes and rejects, indexes, usage, checkpoint), and the audit."""

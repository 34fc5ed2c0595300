"""Publishing under governance: targets, the approval signals, idempotency and the attempt log."""

"""Generation: for each item, reserve, call, QA, escalate once, settle, and append the outcome to the ledger."""

"""Tests of content_pipeline/generation: outcomes, QA, budgets, the call gate, changed items, provenance."""

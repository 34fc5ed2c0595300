"""Tests of content_pipeline/ledger: intents, record ids, scans, spill, damaged records."""

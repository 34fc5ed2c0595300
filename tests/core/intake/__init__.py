"""Tests of content_pipeline/intake: inventory, preflight, big and broken catalogues."""

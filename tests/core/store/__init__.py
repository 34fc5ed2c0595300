"""Tests of content_pipeline/store: the backends, cells, a frozen, full or denying store."""

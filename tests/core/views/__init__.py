"""Tests of content_pipeline/views: consolidate, sync and audit."""

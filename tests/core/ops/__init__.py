"""Tests of content_pipeline/ops: backup, restore, replay, reports, charts, template ranking, templates."""

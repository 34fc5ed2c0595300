"""Tests of content_pipeline/commands: the catalogue at both front doors."""

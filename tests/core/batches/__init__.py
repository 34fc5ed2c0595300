"""Tests of content_pipeline/batches: batch mode, crashes mid-batch, lost output."""

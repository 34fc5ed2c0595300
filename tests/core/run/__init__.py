"""Tests of content_pipeline/run: the go-live sequence, progress, SIGKILL chaos."""

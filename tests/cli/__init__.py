"""Tests of cli/: the content-pipeline command as an operator runs it."""

"""Tests of flows/, tasks/ and blocks/ against the session's Prefect server."""

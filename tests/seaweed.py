"""The suite's SeaweedFS server: the launcher lives in flows/seaweed.py (the cluster starts the same one)."""

from __future__ import annotations

from flows.seaweed import seaweed_server

__all__ = ["seaweed_server"]

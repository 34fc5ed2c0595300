"""The suite's SeaweedFS server: the launcher lives in devstack/seaweed.py (the cluster starts the same one)."""

from __future__ import annotations

from devstack.seaweed import seaweed_server

__all__ = ["seaweed_server"]

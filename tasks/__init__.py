"""Prefect tasks: thin wrappers that call the core stages, with retries on store I/O."""

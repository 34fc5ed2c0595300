"""The project's Prefect blocks (storage location, LLM, notifications) live here."""

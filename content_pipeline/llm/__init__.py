"""The LLM: the `openai` client and what its answers and errors mean, provider pacing, the offline model."""

"""Tests of content_pipeline/llm: pacing, the prompt cache, provider faults over HTTP."""

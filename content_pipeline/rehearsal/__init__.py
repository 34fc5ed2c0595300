"""The rehearsal provider (`content-pipeline fake-llm serve`): an OpenAI-compatible server with limits and
faults on demand, apart from the product code."""

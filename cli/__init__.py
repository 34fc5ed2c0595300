"""The `content-pipeline` command: the catalogue's commands rendered in a terminal, and fake-llm."""

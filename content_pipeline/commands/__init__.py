"""The catalogue of commands: each stage, operation and publishing command as a core function with a typed
parameter model, rendered by the CLI (cli/) and by the Prefect flows (flows/pipeline.py) alike."""

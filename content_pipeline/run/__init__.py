"""The run: go-live and each stage as plain Python, reporting through a small interface the flows implement."""

"""The run: go-live and each stage as plain Python, reporting through a small interface the flows implement."""

WHOLE_RUNS = ("go-live", "replay-failed")  # the commands that run go-live (and print its report)

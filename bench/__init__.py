"""Benchmarks (`make bench`): throughput against the fake provider, bookkeeping cost, durable appends, go-live."""

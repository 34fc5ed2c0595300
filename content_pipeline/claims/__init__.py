"""Claims: which run generates which item, in a queue changed only by compare-and-swap, under leases."""

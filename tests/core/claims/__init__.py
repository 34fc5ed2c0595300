"""Tests of content_pipeline/claims: the batch builder's lease and claims, sweep."""

"""Tests of content_pipeline/publish: governance, posts, halt, holds, the webhook and WordPress targets."""

"""Open the store a URL names: a local folder (default `./data`, or `file://...`) or `s3://bucket/prefix`."""

from __future__ import annotations

from urllib.parse import urlparse

from content_pipeline.errors import BadInputError
from content_pipeline.store.base import ObjectInfo, ReadOnlyStore, Store, check_key
from content_pipeline.store.local import LocalStore

__all__ = ["ObjectInfo", "ReadOnlyStore", "Store", "check_key", "open_store"]


def open_store(url: str, *, read_only: bool = False) -> Store:
    """The store for `url`; read-only stores refuse every write (EVIDENCE_ONLY)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        store: Store = LocalStore(parsed.path if parsed.scheme == "file" else url)
    elif parsed.scheme == "s3":
        from content_pipeline.store.s3 import S3Store

        if not parsed.netloc:
            raise BadInputError(f"STORE_URL {url!r}: no bucket; use s3://bucket/prefix")
        store = S3Store(url, parsed.netloc, parsed.path)
    else:
        raise BadInputError(f"STORE_URL {url!r}: unsupported scheme {parsed.scheme!r} (use a path or file://)")
    return ReadOnlyStore(store) if read_only else store

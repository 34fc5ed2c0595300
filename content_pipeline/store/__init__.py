"""The store: one interface, a local folder or an S3 prefix chosen by a URL; its key layout and its leases."""

from __future__ import annotations

from urllib.parse import urlparse

from content_pipeline.configs import StoreConfig
from content_pipeline.errors import BadInputError
from content_pipeline.store.base import ObjectInfo, ReadOnlyStore, RequestCounts, Store, check_key
from content_pipeline.store.local import LocalStore
from content_pipeline.urls import carries_credentials, credentials_refusal

__all__ = ["ObjectInfo", "ReadOnlyStore", "RequestCounts", "Store", "check_key", "open_store", "store_for"]


def store_for(settings: StoreConfig, *, read_only: bool | None = None) -> Store:
    """The store the settings name (read-only under EVIDENCE_ONLY unless told otherwise)."""
    return open_store(
        settings.store_url,
        read_only=settings.evidence_only if read_only is None else read_only,
        **settings.s3_options(),
    )


def open_store(
    url: str,
    *,
    read_only: bool = False,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Store:
    """The store for `url`; read-only stores refuse every write (EVIDENCE_ONLY). S3 options left None
    come from the standard AWS chain. A URL carrying credentials is refused, not shown."""
    if carries_credentials(url):
        raise BadInputError(credentials_refusal("the store URL"))
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        store: Store = LocalStore(parsed.path if parsed.scheme == "file" else url)
    elif parsed.scheme == "s3":
        from content_pipeline.store.s3 import S3Store, s3_client

        if not parsed.netloc:
            raise BadInputError(f"STORE_URL {url!r}: no bucket; use s3://bucket/prefix")
        client = s3_client(endpoint_url, region, access_key, secret_key)
        store = S3Store(url, parsed.netloc, parsed.path, client)
    else:
        raise BadInputError(f"STORE_URL {url!r}: unsupported scheme {parsed.scheme!r} (use a path or file://)")
    return ReadOnlyStore(store) if read_only else store

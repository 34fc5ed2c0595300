"""The S3 store: PutObject replaces, IfNoneMatch creates (the one condition cells rest on), one object per
appended record."""

from __future__ import annotations

import re
import secrets
import threading
import time
from contextlib import suppress
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from content_pipeline.errors import BadInputError, StoreError, StoreIOError
from content_pipeline.store import layout
from content_pipeline.store.base import (
    Appender,
    ObjectInfo,
    ObjectWriter,
    RequestCounts,
    Store,
    check_key,
)

PART_BYTES = 16 * 2**20  # multipart upload part size (S3 wants at least 5 MB but the last)
CONNECT_TIMEOUT_S = 5.0  # a TCP connect to the endpoint
READ_TIMEOUT_S = 10.0  # silence from the endpoint within one request (a frozen server)
DEADLINE_S = 15.0  # an S3 call that got no answer is not tried again past this (errors answered keep retrying)
RETRIES = Config(
    retries={"mode": "standard", "max_attempts": 8}, connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S
)
_STARTED = "content_pipeline_started"  # in botocore's request context: when the call's first attempt began


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def s3_client(
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Any:
    """A boto3 S3 client with botocore's standard retry mode, bounded in time for a call that gets no answer
    at all; None options come from the AWS chain."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=RETRIES,
    )
    client.meta.events.register("before-call.s3", _started)
    client.meta.events.register_first("needs-retry.s3", _within_deadline)
    return client


def _started(context: dict[str, Any], **_: Any) -> None:
    context[_STARTED] = time.monotonic()


def _within_deadline(request_dict: dict[str, Any], caught_exception: Exception | None = None, **_: Any) -> bool | None:
    """No retry of a call that got no answer (a timeout, a refused or dropped connection) once another try
    could end past DEADLINE_S from its start: a frozen endpoint ends the call in bounded time. Answers
    (503, SlowDown) are left to the standard mode. False vetoes the retry; None lets botocore decide."""
    if caught_exception is None:
        return None
    began = request_dict.get("context", {}).get(_STARTED)
    if began is None:
        return None
    return False if time.monotonic() - began + READ_TIMEOUT_S > DEADLINE_S else None


def unanswered(where: str, exc: BotoCoreError) -> str | None:
    """The one line for a call the endpoint did not answer in time (None for any other failure)."""
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return f"{where}: the S3 endpoint did not answer within {READ_TIMEOUT_S:.0f} s (frozen or overloaded?)"
    return None


def _append_base(key: str) -> str:
    """The folder holding the objects appended to `key`: `a/b.jsonl` -> `a/b`."""
    return key[: -len(".jsonl")] if key.endswith(".jsonl") else key


def open_s3_url(url: str, options: dict[str, str | None] | None = None) -> Any:
    """The body of one object named `s3://bucket/key` (the catalogue, say), to read in pieces (`read(n)`);
    a clear line when it cannot be opened."""
    parsed = urlparse(url)
    key = parsed.path.lstrip("/")
    if not parsed.netloc or not key:
        raise BadInputError(f"{url}: expected s3://bucket/key")
    client = s3_client(**(options or {}))
    try:
        return client.get_object(Bucket=parsed.netloc, Key=key)["Body"]
    except ClientError as exc:
        code = _code(exc)
        reason = {"NoSuchKey": "no such object", "NoSuchBucket": "no such bucket", "AccessDenied": "access denied"}
        raise BadInputError(f"{url}: {reason.get(code, code)}") from None
    except BotoCoreError as exc:
        raise BadInputError(f"{url}: cannot read ({exc})") from None


_MD5 = re.compile(r"[0-9a-f]{32}")  # an ETag that is the MD5 of the object (not a multipart one)


class S3Appender(Appender):
    """Each append is one new object under the segment's name, created only if absent: durable once PUT
    returns. An append tried again after a failure (the same bytes) goes to the same key, so a PUT that
    landed although its answer was lost is found there, not written a second time under another key."""

    def __init__(self, store: S3Store, key: str) -> None:
        self.store = store
        self.base = _append_base(key)
        # objects sort by the appender's start (ms), then by writer, then in the order they were appended
        self.token = f"{time.time_ns() // 1_000_000:013d}-{secrets.token_hex(4)}"
        self.seq = 0
        self._failed: tuple[bytes, str] | None = None  # the bytes and key of the append that last failed
        self._written: list[str] = []  # every key an append was tried under (a failed try may have landed)
        self._lock = threading.Lock()

    def _key_for(self, data: bytes) -> str:
        with self._lock:
            if self._failed is not None and self._failed[0] == data:
                return self._failed[1]
            self.seq += 1
            key = f"{self.base}/{self.token}-{self.seq:09d}.jsonl"
            self._written.append(key)
            return key

    def append(self, data: bytes) -> None:
        key = self._key_for(data)
        try:
            created = self.store.put_if_absent(key, data)
            if not created and self.store.get(key) != data:  # the same bytes there: an earlier try landed
                raise StoreError(f"ledger object {key} already exists: refusing to overwrite a record")
        except StoreIOError:
            with self._lock:
                self._failed = (data, key)
            raise
        with self._lock:
            self._failed = None

    def close(self) -> None:
        pass

    def discard(self) -> None:
        with self._lock:
            keys, self._written = self._written, []
        self.store.delete_many(keys)


class S3Writer(ObjectWriter):
    """A multipart upload in parts of PART_BYTES (one PutObject when the object is small); the object
    appears only when the upload completes, and an aborted upload leaves nothing behind."""

    def __init__(self, store: S3Store, key: str) -> None:
        self.store, self.key = store, key
        self._buffer = bytearray()
        self._upload: str | None = None
        self._parts: list[dict[str, Any]] = []

    def _send_part(self) -> None:
        store, full = self.store, self.store._key(self.key)
        if self._upload is None:
            store._count("PUT", self.key)
            made = store._call("upload", store.client.create_multipart_upload, Key=full)
            self._upload = made["UploadId"]
        store._count("PUT", self.key)
        number = len(self._parts) + 1
        sent = store._call(
            "upload",
            store.client.upload_part,
            Key=full,
            UploadId=self._upload,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})
        self._buffer.clear()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= PART_BYTES:
            try:
                self._send_part()
            except (ClientError, StoreIOError) as exc:
                self.abort()
                raise StoreIOError(f"S3 upload of {self.key} failed: {exc}") from None

    def commit(self) -> None:
        store = self.store
        try:
            if self._upload is None:
                store.put(self.key, bytes(self._buffer))
                return
            if self._buffer:
                self._send_part()
            store._count("PUT", self.key)
            store._call(
                "upload",
                store.client.complete_multipart_upload,
                Key=store._key(self.key),
                UploadId=self._upload,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload = None
        except (ClientError, StoreIOError) as exc:
            self.abort()
            raise StoreIOError(f"S3 upload of {self.key} failed: {exc}") from None
        finally:
            self._buffer.clear()

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload is not None:
            upload, self._upload = self._upload, None
            with suppress(ClientError, BotoCoreError, StoreIOError):
                self.store._count("DELETE", self.key)
                self.store._call(
                    "abort", self.store.client.abort_multipart_upload, Key=self.store._key(self.key), UploadId=upload
                )


class S3Store(Store):
    """A store under s3://bucket/prefix; keys are relative to the prefix."""

    def __init__(self, url: str, bucket: str, prefix: str, client: Any | None = None) -> None:
        self.url, self.bucket, self.prefix = url, bucket, prefix.strip("/")
        self.client = client or s3_client()
        self._counts = RequestCounts()
        self._count_lock = threading.Lock()
        self.client.meta.events.register("before-send.s3", self._attempt)
        try:
            self._count("HEAD", "")
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            reason = {404: "does not exist", 403: "access denied", 400: "bad bucket name"}.get(status, _code(exc))
            raise BadInputError(f"STORE_URL {url}: bucket {bucket!r} {reason}") from None
        except (EndpointConnectionError, BotoCoreError) as exc:
            line = unanswered(f"store {url}", exc)
            raise (
                StoreError(line) if line else BadInputError(f"STORE_URL {url}: S3 endpoint unreachable ({exc})")
            ) from None

    def _count(self, verb: str, key: str) -> None:
        with self._count_lock:
            self._counts.by_verb_area[(verb, layout.area(key))] += 1

    def _attempt(self, **_: Any) -> None:
        """Every HTTP attempt botocore sends (retries included); returns None so the request goes out."""
        with self._count_lock:
            self._counts.attempts += 1

    def request_counts(self) -> RequestCounts:
        with self._count_lock:
            return RequestCounts(self._counts.by_verb_area.copy(), self._counts.attempts)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except BotoCoreError as exc:
            line = unanswered(f"store {self.url}: S3 {what}", exc)
            raise StoreError(line) if line else StoreIOError(f"S3 {what} failed: {exc}") from None

    def _body(self, resp: dict[str, Any], key: str) -> bytes:
        """An object's bytes; an endpoint that stops sending is one line naming the store, not a hang."""
        try:
            return bytes(resp["Body"].read())
        except BotoCoreError as exc:
            line = unanswered(f"store {self.url}: S3 get {key}", exc)
            raise StoreError(line) if line else StoreIOError(f"S3 get {key} failed: {exc}") from None

    def get(self, key: str) -> bytes | None:
        try:
            self._count("GET", key)
            resp = self._call("get", self.client.get_object, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise StoreIOError(f"S3 get {key} failed: {_code(exc)}") from None
        return self._body(resp, key)

    def _put(self, key: str, data: bytes, **conditions: str) -> bool:
        try:
            self._count("PUT", key)
            self._call("put", self.client.put_object, Key=self._key(key), Body=data, **conditions)
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise StoreIOError(f"S3 put {key} failed: {_code(exc)}") from None
        return True

    def put(self, key: str, data: bytes) -> None:
        self._put(key, data)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        try:
            self._count("GET", key)
            resp = self._call("get", self.client.get_object, Key=self._key(key), Range=f"bytes={start}-{end - 1}")
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "InvalidRange", "416"):
                return b""
            raise StoreIOError(f"S3 get {key} failed: {_code(exc)}") from None
        return self._body(resp, key)

    def writer(self, key: str) -> ObjectWriter:
        return S3Writer(self, check_key(key))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._put(key, data, IfNoneMatch="*")

    def delete(self, key: str) -> None:
        try:
            self._count("DELETE", key)
            self._call("delete", self.client.delete_object, Key=self._key(key))
        except ClientError as exc:
            raise StoreIOError(f"S3 delete {key} failed: {_code(exc)}") from None

    def delete_many(self, keys: list[str]) -> None:
        """DeleteObjects, a thousand keys a request (S3's limit)."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                self._count("DELETE", batch[0])
                objects = [{"Key": self._key(key)} for key in batch]
                done = self._call("delete", self.client.delete_objects, Delete={"Objects": objects, "Quiet": True})
            except ClientError as exc:
                raise StoreIOError(
                    f"S3 delete of {len(batch)} object(s) from {batch[0]} failed: {_code(exc)}"
                ) from None
            errors = done.get("Errors") or []
            if errors:
                first = errors[0]
                raise StoreIOError(f"S3 delete {first.get('Key')} failed: {first.get('Code')} (of {len(errors)})")

    def appender(self, key: str) -> Appender:
        return S3Appender(self, check_key(key))

    def read_digest(self, info: ObjectInfo, keep: bool = True) -> str:
        """An object put in one request has its MD5 as its ETag: no need to read it."""
        etag = info.version.strip('"')
        return etag if _MD5.fullmatch(etag) else super().read_digest(info)

    def list(self, prefix: str) -> list[ObjectInfo]:
        if prefix.strip("/"):
            check_key(prefix.strip("/"))
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        cut = len(self.prefix) + 1 if self.prefix else 0
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                self._count("LIST", prefix)
                for obj in page.get("Contents", []):
                    out.append(ObjectInfo(obj["Key"][cut:], obj["Size"], obj["ETag"], obj["LastModified"].timestamp()))
        except BotoCoreError as exc:
            line = unanswered(f"store {self.url}: S3 list {prefix}", exc)
            raise StoreError(line) if line else StoreIOError(f"S3 list {prefix} failed: {exc}") from None
        except ClientError as exc:
            raise StoreIOError(f"S3 list {prefix} failed: {exc}") from None
        return sorted(out, key=lambda info: info.key)

    def read_appended(self, key: str) -> bytes:
        """The appended objects under the key's folder, in the order they were appended (by writer, then seq)."""
        return b"".join(self.get(info.key) or b"" for info in self.list(_append_base(check_key(key)) + "/"))

    def truncate(self, key: str, size: int) -> None:
        data = self.get(key) or b""
        self.put(key, data[:size])

"""A faithful copy of a store is the same store: a folder copied with `cp -a` or written anew file by file, a
bucket prefix synced to another (server-side copies, as `aws s3 sync` makes them, and multipart re-uploads whose
ETags are no longer MD5s) reads green in health on the copy, its views current, with no consolidation; and
views that are not current say truly why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from content_pipeline.ops.health import health
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout, open_store
from content_pipeline.views.snapshot import why_not_current
from tests.support.helpers import run, segment_holding


@pytest.fixture
def served(make_settings) -> tuple[Settings, Store]:
    settings = make_settings()
    store = open_store(settings.store_url)
    report = run(settings, store)
    assert report.ok and report.stats.successes == 20
    return settings, store


def _bucket_and_prefix(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def sync(source: str, target: str, multipart: bool) -> None:
    """Every object of `source`'s prefix copied under `target`'s: server-side copies, or each object
    uploaded again as a one-part multipart upload (its ETag then `<md5 of md5s>-1`, not its MD5)."""
    client = boto3.client("s3")
    bucket, old = _bucket_and_prefix(source)
    _, new = _bucket_and_prefix(target)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{old}/")
    for obj in (o for page in pages for o in page.get("Contents", [])):
        key = f"{new}/{obj['Key'][len(old) + 1 :]}"
        if not multipart:
            client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": obj["Key"]})
            continue
        body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=body)
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )


def copy_of(settings: Settings, backend: str, tmp_path: Path, how: str) -> str:
    """`kept`: `cp -a` (new inodes, the same times), or server-side copies; `rewritten`: every file written
    anew (new times too, as a sync tool that keeps no times does), or multipart re-uploads."""
    if backend == "file":
        target = tmp_path / "copy"
        if how == "kept":
            subprocess.run(["cp", "-a", settings.store_url, str(target)], check=True)
        else:
            shutil.copytree(settings.store_url, target, copy_function=shutil.copyfile)
        return str(target)
    target_url = f"{settings.store_url}-{how}"
    sync(settings.store_url, target_url, multipart=how == "rewritten")
    return target_url


@pytest.mark.parametrize("how", ["kept", "rewritten"])
def test_health_is_green_on_a_faithful_copy(served, backend: str, tmp_path: Path, how: str) -> None:
    settings, _ = served
    copy_url = copy_of(settings, backend, tmp_path, how)
    copied = settings.model_copy(update={"store_url": copy_url})
    result = health(open_store(copy_url), copied)
    assert result.level == "green", result.lines()
    assert next(c for c in result.checks if c.name == "views").detail == "current"


def test_views_not_current_say_why(served) -> None:
    store = served[1]
    assert why_not_current(store) is None
    key, data, start = segment_holding(store, "item-0007")
    store.put(key, data[:start] + data[start:].replace(b"Meet the", b"Meat the", 1))  # same size, in place
    assert why_not_current(store) == f"1 segment(s) changed in place at the same size (edited or damaged): {key}"
    store.put(key, data + data[start : data.index(b"\n", start) + 1])  # a record appended
    assert why_not_current(store) == "records appended to 1 ledger segment(s) since they were built"
    store.delete(key)
    assert why_not_current(store) == f"1 segment(s) they were built from are gone or shorter: {key}"
    assert layout.LEDGER_PREFIX in key

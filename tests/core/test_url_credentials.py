"""A URL carrying credentials (`https://user:pass@host`) in any URL setting or block is refused at the edge
with one line naming the setting, and the password is never echoed: not on the console, not in a Prefect
state or log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from pydantic import ValidationError

from blocks.llm import LLMConfig
from blocks.publish import SignedWebhook, WordPressSite
from blocks.store import StoreLocation
from content_pipeline.errors import BadInputError
from content_pipeline.settings import load_settings
from content_pipeline.store import open_store

PLANTED = "planted-pw-7f3a9c"  # the password every hostile URL carries; it must appear nowhere
URLS = {
    "WP_URL": f"https://editor:{PLANTED}@wp.example.test",
    "PUBLISH_WEBHOOK_URL": f"https://hook:{PLANTED}@hooks.example.test/in",
    "OPENAI_BASE_URL": f"http://key:{PLANTED}@127.0.0.1:9/v1",
    "AWS_ENDPOINT_URL": f"http://ak:{PLANTED}@127.0.0.1:9",
    "STORE_URL": f"s3://ak:{PLANTED}@bucket/prefix",
    "BACKUP_URL": f"s3://ak:{PLANTED}@bucket/backups",
    "CATALOGUE": f"https://shop:{PLANTED}@feeds.example.test/catalogue.csv",
}


@pytest.mark.parametrize("name", sorted(URLS))
def test_each_url_setting_refuses_credentials_without_echoing_them(name: str) -> None:
    with pytest.raises(BadInputError) as caught:
        load_settings(**{name.lower(): URLS[name]})
    line = str(caught.value)
    assert line.startswith(f"setting {name}: the URL carries credentials"), line
    assert PLANTED not in line and "\n" not in line


def test_a_url_with_an_at_sign_in_its_path_is_not_credentials() -> None:
    settings = load_settings(wp_url="https://wp.example.test/team@shop", store_url="/tmp/a@b")
    assert settings.wp_url == "https://wp.example.test/team@shop"


@pytest.mark.parametrize(
    ("block", "fields"),
    [
        (WordPressSite, {"url": URLS["WP_URL"], "username": "u", "application_password": "p"}),
        (SignedWebhook, {"url": URLS["PUBLISH_WEBHOOK_URL"], "secret": "s"}),
        (StoreLocation, {"url": "s3://bucket/x", "endpoint_url": URLS["AWS_ENDPOINT_URL"]}),
        (StoreLocation, {"url": URLS["STORE_URL"]}),
        (LLMConfig, {"base_url": URLS["OPENAI_BASE_URL"]}),
    ],
)
def test_a_block_refuses_a_url_with_credentials_without_echoing_it(block: type, fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        block(**fields)
    assert "the URL carries credentials" in str(caught.value)
    assert PLANTED not in str(caught.value) and PLANTED not in repr(caught.value.errors(include_input=False))


def test_a_backup_target_with_credentials_is_refused() -> None:
    with pytest.raises(BadInputError) as caught:
        open_store(URLS["BACKUP_URL"])
    assert PLANTED not in str(caught.value) and "the URL carries credentials" in str(caught.value)


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WP_", "PUBLISH_", "OPENAI_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**base, "CONTENT_PIPELINE_ENV_FILE": "", "RUN_MODE": "direct", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["WP_URL", "PUBLISH_WEBHOOK_URL", "STORE_URL", "CATALOGUE", "OPENAI_BASE_URL"])
def test_the_cli_refuses_with_one_line_and_stores_nothing(name: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {"STORE_URL": str(store), name: URLS[name]}
    done = _cli(["publish", "--target", "wordpress"] if name == "WP_URL" else ["go-live"], env, Path.cwd())
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
    assert f"{name}: the URL carries credentials" in done.stderr
    assert PLANTED not in done.stdout + done.stderr
    assert not store.exists() or not any(store.rglob("*")), "a refused run stored something"


@pytest.mark.server
def test_a_flow_run_refused_for_a_url_with_credentials_keeps_the_password_out_of_prefect(
    prefect_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows import pipeline

    monkeypatch.setenv("STORE_URL", str(tmp_path / "store"))
    monkeypatch.setenv("WP_URL", URLS["WP_URL"])
    state = pipeline.go_live(run_id="planted-url", return_state=True)
    assert state.is_failed()
    assert state.message is not None and "WP_URL: the URL carries credentials" in state.message
    texts = [state.message, repr(state.data)]

    # The sync client: an earlier test (playwright's) may leave an event loop running in this thread.
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        found = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)
    texts += [run.model_dump_json()] + [log.message for log in found]
    assert all(PLANTED not in text for text in texts), [t for t in texts if PLANTED in t][:1]

"""The loop that learns, through the command line: planted engagement (two templates, one truly better, with
noise) served by the Search Console rehearsal server (no Google account is reachable here: the loopback server
speaks the documented wire format and checks the service account's signature, see rehearsal/search_console.py),
pulled by `engagement pull`, then `template-rank --apply` checked as of each of 30 days: the better template is
promoted within the horizon; when the two are alike, neither is ever promoted; `templates rollback` undoes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from cli.main import main
from content_pipeline.generation.templates import DEFAULT, PromptTemplate, read_active, save_template, write_active
from content_pipeline.rehearsal.planted import plant
from content_pipeline.rehearsal.search_console import SearchConsoleRehearsal, SearchConsoleSite, service_account
from content_pipeline.store import Store
from tests.support.engagement import SITE, TODAY, link, publish_on, written_by

A, B = DEFAULT.key, "catalogue-item:2"
EMAIL = "pipeline@shop-example.iam.gserviceaccount.com"
DAYS, LIVE_DAYS, PER_DAY, CHECKS = 40, 30, 6, 30  # figures over 40 days; posts go live on the first 30
START = TODAY - timedelta(days=DAYS)


def served(store: Store, seed: int, ctrs: dict[str, float]) -> tuple[SearchConsoleSite, dict[str, str]]:
    """The store's published posts and their templates, and a property serving their figures to yesterday."""
    posts = [p for p in plant(seed, ctrs, DAYS, PER_DAY) if p.live_day < LIVE_DAYS]
    publish_on(store, {p.slug: START + timedelta(days=p.live_day) for p in posts})
    written_by(store, {p.slug: p.template for p in posts})
    pages = {}
    for post in posts:
        for offset, (clicks, shown) in enumerate(post.days):
            day = START + timedelta(days=post.live_day + offset)
            pages[(link(post.slug), day.isoformat())] = {"clicks": clicks, "impressions": shown, "position": 4.0}
    info, public = service_account(EMAIL, "")
    incomplete = (TODAY - timedelta(days=2)).isoformat()
    return SearchConsoleSite(f"{SITE}/", EMAIL, public, pages, first_incomplete=incomplete), info


@pytest.fixture
def two_templates(store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    variant = PromptTemplate(id="catalogue-item", version="2", system=DEFAULT.system + " Be brief.", user=DEFAULT.user)
    save_template(store, variant)
    write_active(store, {A: 1, B: 1}, read_active(store)[1])
    monkeypatch.setenv("STORE_URL", store_url)
    yield store


def cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def pull(site: SearchConsoleSite, info: dict[str, str], monkeypatch, capsys) -> str:
    with SearchConsoleRehearsal(site) as url:
        monkeypatch.setenv("SEARCH_CONSOLE_SITE_URL", site.site_url)
        monkeypatch.setenv("SEARCH_CONSOLE_KEY", json.dumps({**info, "token_uri": f"{url}/token"}))
        monkeypatch.setenv("SEARCH_CONSOLE_API", url)
        code, out = cli("engagement", "pull", "--since-days", str(DAYS + 5), capsys=capsys)
        again = cli("engagement", "pull", "--since-days", str(DAYS + 5), capsys=capsys)
    assert code == 0 and again[0] == 0, out
    new = int(out.split(" new post-day(s)")[0].split()[-1])
    assert new == len(site.pages) - sum(day >= TODAY.isoformat() for _, day in site.pages)  # every day to yesterday
    assert again[1].strip() == f"engagement pull: search-console: 0 new post-day(s), 0 revised, {new} unchanged"
    return out


def daily_checks(capsys) -> list[dict[str, Any]]:
    """template-rank --apply as of each of 30 days, its record each day."""
    found = []
    for k in range(CHECKS):
        day = (START + timedelta(days=7 + k)).isoformat()
        code, out = cli("template-rank", "--apply", "--as-of", day, "--json", capsys=capsys)
        assert code == 0
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def test_the_better_template_is_promoted_within_the_horizon(two_templates: Store, monkeypatch, capsys) -> None:
    site, info = served(two_templates, seed=3, ctrs={A: 0.03, B: 0.042})
    out = pull(site, info, monkeypatch, capsys)
    assert "engagement pull: search-console: " in out and " new post-day(s), 0 revised" in out
    checks = daily_checks(capsys)
    decided = [n for n, c in enumerate(checks) if c["applied"]]
    assert decided, [c["verdict"] for c in checks]
    first = checks[decided[0]]
    assert (first["promote"], first["retire"]) == ([B], [A]) and decided[0] < CHECKS
    assert read_active(two_templates)[0] == {B: 2}
    assert all(c["verdict"].startswith("not enough evidence") for c in checks[: decided[0]])
    assert checks[-1]["verdict"] == "nothing to compare: fewer than two active templates"
    code, said = cli("templates", "rollback", capsys=capsys)
    assert code == 0 and f"active set {{'{B}': 2}} -> {{'{A}': 1, '{B}': 1}}" in said
    assert read_active(two_templates)[0] == {A: 1, B: 1}


def test_two_alike_templates_are_never_promoted_in_30_daily_checks(two_templates: Store, monkeypatch, capsys) -> None:
    site, info = served(two_templates, seed=5, ctrs={A: 0.035, B: 0.035})
    pull(site, info, monkeypatch, capsys)
    checks = daily_checks(capsys)
    assert [c["verdict"] for c in checks if c["promote"] or c["retire"]] == []
    assert checks[-1]["rows"][0]["posts"] >= 100  # every check looked at a growing sample, and none crowned one
    assert read_active(two_templates)[0] == {A: 1, B: 1}

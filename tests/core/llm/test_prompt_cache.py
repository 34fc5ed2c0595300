"""Cached prompt tokens: the prompt's fixed part comes first, the provider reports
`usage.prompt_tokens_details.cached_tokens`, and the ledger books them at the cached price, as the provider
bills them (the real `openai` client over HTTP against the fake provider's prompt cache)."""

from __future__ import annotations

from content_pipeline.generation.prompts import messages
from content_pipeline.generation.templates import DEFAULT, read_active, save_template, write_active
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.scan import read_records
from content_pipeline.money import PriceTable, to_nano
from content_pipeline.prices import DEFAULT_PRICES
from tests.conftest import make_item
from tests.support.helpers import fake_llm, invoice, run


def test_two_items_prompts_share_their_fixed_part_up_to_the_item() -> None:
    first, second = (messages(Item(**make_item(n))) for n in (1, 2))
    assert first[0] == second[0]  # the system message: the same for every item
    fixed = first[1]["content"].split("<item>\n")[0]
    assert fixed and second[1]["content"].startswith(fixed)


def test_cached_tokens_are_booked_at_the_cached_price_and_the_books_match_the_invoice(make_settings, store) -> None:
    # a production prompt with a style guide: its fixed part over the 1,024 tokens a provider caches from
    guide = " ".join(f"Style rule {n}: write plainly, in the present tense, without superlatives." for n in range(80))
    house = DEFAULT.model_copy(update={"id": "house-style", "system": f"{DEFAULT.system} {guide}"})
    save_template(store, house)
    write_active(store, {house.key: 1}, read_active(store)[1])
    with fake_llm("sk-cache") as server:  # OpenAI's rule: 1,024 tokens at least, in blocks of 128
        settings = make_settings(openai_api_key="sk-cache", openai_base_url=server.url, concurrency=1)
        report = run(settings, store)
        billed = invoice(server)
    records = read_records(store)
    assert report.ok and len(records) == 20
    cached = [r for r in records if r.tokens_cached]
    assert len(cached) == 19  # every call after the first finds the fixed part in the cache
    fixed = len(house.system + house.user.split("{item}")[0].removesuffix("<item>\n")) // 4
    blocks = fixed // 128 * 128
    assert blocks >= 1024 and all(r.tokens_cached == blocks == r.calls[0].tokens_cached for r in cached)
    prices = PriceTable(DEFAULT_PRICES)
    for r in records:
        assert to_nano(r.cost_usd) == prices.cost_nano(r.model, r.tokens_in, r.tokens_out, r.tokens_cached)
    full = sum(prices.cost_nano(r.model, r.tokens_in, r.tokens_out) for r in records)
    assert sum(to_nano(r.cost_usd) for r in records) == billed < full  # what the provider billed, and less
    assert f"({report.stats.tokens_cached} of them cached)" in report.markdown()
    assert report.stats.tokens_cached == 19 * blocks

"""The offline model: an OpenAI-compatible transport inside the process that writes deterministic content
from the item's fields and reports token usage, so the same client code path runs without a key."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time

import httpx2

REFUSED_CATEGORIES = {"restricted"}
ITEM_JSON = re.compile(r"<item>\s*(\{.*\})\s*</item>", re.DOTALL)


def write_content(item: dict, strong: bool) -> dict | None:
    """The content the offline model writes for `item`; None means it refuses."""
    title = str(item.get("title", "")).strip()
    category = str(item.get("category", "")).strip()
    features = [str(f).strip() for f in item.get("features") or [] if str(f).strip()]
    price = float(item.get("price") or 0)
    if category.lower() in REFUSED_CATEGORIES:
        return None
    sentences = [f"Meet the {title}, a {category.lower()} pick at ${price:.2f}."]
    sentences += [f"It offers {f[0].lower() + f[1:]}." for f in features]
    if features and (strong or len(features) >= 2):
        sentences.append(
            f"Every detail of the {title} is listed plainly, so you know what you get before you buy, "
            "and it is ready for everyday use from the day it arrives."
        )
    if item.get("promo"):
        sentences.append("It is part of the current promotion.")
    highlights = [*features[:6], f"{category} item", f"Priced at ${price:.2f}", "Ships ready to use"]
    seo = f"{title}: {category.lower()} at ${price:.2f}. " + "; ".join(features)
    if len(seo) < 60:
        seo += " Details, features and price in one place."
    return {
        "headline": f"{title} | {category}"[:120],
        "description": " ".join(sentences),
        "highlights": highlights[: max(3, min(6, len(features)))],
        "seo_description": seo[:160].rstrip(),
    }


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def completion_body(request_body: dict, strong_model: str) -> dict:
    """A chat.completion response for the request, as an OpenAI-compatible server would send it;
    the strong model writes more from the same fields."""
    model = request_body.get("model", "offline")
    msgs = request_body.get("messages") or []
    prompt = "".join(str(m.get("content") or "") for m in msgs)
    found = ITEM_JSON.search(prompt)
    item = json.loads(found.group(1)) if found else {}
    content = write_content(item, model == strong_model)
    message: dict = {"role": "assistant", "content": None, "refusal": None}
    if content is None:
        message["refusal"] = "I'm sorry, I can't help with this item."
        text = message["refusal"]
    else:
        text = json.dumps(content)
        message["content"] = text
    return {
        "id": "offline-" + hashlib.sha256(prompt.encode()).hexdigest()[:16],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "offline",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message, "logprobs": None}],
        "usage": {
            "prompt_tokens": _tokens(prompt) + 8 * len(msgs),
            "completion_tokens": _tokens(text),
            "total_tokens": _tokens(prompt) + 8 * len(msgs) + _tokens(text),
        },
    }


def transport(strong_model: str, latency_ms: int = 0) -> httpx2.MockTransport:
    """An httpx2 transport that answers /chat/completions in-process after `latency_ms`."""

    async def handler(request: httpx2.Request) -> httpx2.Response:
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        if not request.url.path.endswith("/chat/completions"):
            return httpx2.Response(404, json={"error": {"message": "not found", "type": "invalid_request_error"}})
        return httpx2.Response(200, json=completion_body(json.loads(request.content), strong_model))

    return httpx2.MockTransport(handler)

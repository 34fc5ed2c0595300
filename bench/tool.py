"""The usual batch-generation script, the comparison for an ad-hoc run end to end: read a JSONL catalogue,
ask the `openai` client about each item with bounded concurrency, write every answer to a JSONL file. No
QA, no ledger, no budget, no claims. `python -m bench.tool CATALOGUE OUT URL CONCURRENCY`."""

from __future__ import annotations

import asyncio
import json
import sys

from openai import AsyncOpenAI

SYSTEM = "You write product content for an online catalogue. Answer with JSON only."


async def generate(catalogue: str, out: str, url: str, concurrency: int) -> None:
    client = AsyncOpenAI(api_key="sk-bench", base_url=url, max_retries=0)
    gate = asyncio.Semaphore(concurrency)
    with open(catalogue) as lines:
        items = [json.loads(line) for line in lines if line.strip()]
    with open(out, "w") as answers:

        async def one(item: dict[str, object]) -> None:
            async with gate:
                completion = await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[
                        {"role": "system", "content": SYSTEM},
                        {
                            "role": "user",
                            "content": f"Write the content for this item.\n<item>\n{json.dumps(item)}\n</item>",
                        },
                    ],
                    response_format={"type": "json_object"},
                    max_completion_tokens=800,
                )
            answers.write(json.dumps({"slug": item["slug"], "content": completion.choices[0].message.content}) + "\n")

        await asyncio.gather(*(one(item) for item in items))
    await client.close()


if __name__ == "__main__":
    asyncio.run(generate(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))

"""Write the bundled sample catalogue (deterministic): realistic items plus a few broken rows."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "content_pipeline" / "sample" / "catalogue.jsonl"

CATEGORIES = {
    "Kitchen": (
        ["Kettle", "Chef Knife", "Cutting Board", "Coffee Grinder", "Saucepan", "Blender", "Spice Rack"],
        [
            "holds up to {n} cups",
            "a {n}-year warranty",
            "dishwasher-safe parts",
            "a {n} cm stainless steel body",
            "a non-slip base with {n} rubber feet",
            "an auto shut-off after {n} minutes",
            "a {n} W motor",
        ],
    ),
    "Outdoor": (
        ["Tent", "Camping Stove", "Headlamp", "Sleeping Bag", "Trekking Poles", "Water Filter", "Hammock"],
        [
            "weighs only {n}00 g",
            "rated to -{n} degrees Celsius",
            "a {n}-hour battery",
            "packs down to {n} cm",
            "a {n}000 mm waterproof rating",
            "room for {n} people",
            "a {n} litre capacity",
        ],
    ),
    "Electronics": (
        ["Wireless Earbuds", "Power Bank", "USB-C Hub", "Bluetooth Speaker", "Webcam", "Smart Plug"],
        [
            "{n} hours of playback",
            "{n} W fast charging",
            "{n} ports in one hub",
            "a {n}p video sensor",
            "Bluetooth 5.{n} pairing",
            "an IPX{n} splash rating",
            "a {n} mAh cell",
        ],
    ),
    "Home Office": (
        ["Desk Lamp", "Monitor Stand", "Ergonomic Chair", "Standing Desk", "Cable Tray", "Notebook Set"],
        [
            "{n} brightness levels",
            "a height range of {n} cm",
            "a {n} kg load rating",
            "{n} memory presets",
            "a {n}-degree tilt",
            "recycled paper with {n} pages",
            "a {n}-year frame warranty",
        ],
    ),
    "Fitness": (
        ["Yoga Mat", "Kettlebell", "Resistance Bands", "Jump Rope", "Foam Roller", "Dumbbell Pair"],
        [
            "{n} mm of cushioning",
            "a weight of {n} kg",
            "{n} resistance levels",
            "a {n} cm length",
            "a grip textured in {n} zones",
            "a carry strap rated to {n} kg",
        ],
    ),
    "Garden": (
        ["Pruning Shears", "Watering Can", "Raised Bed", "Hose Reel", "Seed Starter Kit", "Garden Kneeler"],
        [
            "a {n} cm cutting capacity",
            "holds {n} litres",
            "{n} planting cells",
            "a {n} m hose capacity",
            "rust-proof steel rated for {n} seasons",
            "a {n} cm foam pad",
        ],
    ),
    "Pets": (
        ["Dog Bed", "Cat Tree", "Pet Fountain", "Leash", "Chew Toy Set", "Travel Crate"],
        [
            "a {n} cm sleeping surface",
            "{n} scratching posts",
            "a {n} litre reservoir",
            "a {n} m reflective leash",
            "{n} toys of natural rubber",
            "fits pets up to {n} kg",
        ],
    ),
    "Travel": (
        ["Carry-On Suitcase", "Packing Cubes", "Neck Pillow", "Travel Adapter", "Toiletry Bag", "Passport Wallet"],
        [
            "a {n} litre capacity",
            "{n} spinner wheels",
            "{n} compression zips",
            "works in {n} countries",
            "{n} inner pockets",
            "RFID blocking in {n} slots",
        ],
    ),
}
ADJECTIVES = [
    "Aurora",
    "Summit",
    "Harbor",
    "Nimbus",
    "Cedar",
    "Vertex",
    "Lumen",
    "Drift",
    "Atlas",
    "Juniper",
    "Orbit",
    "Pioneer",
    "Willow",
    "Quartz",
    "Ember",
    "Solace",
    "Tundra",
    "Meridian",
    "Crest",
    "Falcon",
]


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def item(rng: random.Random, index: int, n_features: int | None = None, category: str | None = None) -> dict:
    category = category or rng.choice(sorted(CATEGORIES))
    nouns, pool = CATEGORIES.get(category, CATEGORIES["Kitchen"])
    title = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)} {rng.choice(['Pro', 'Lite', 'Max', 'Mini', 'Plus', 'Go', 'One'])}"
    count = rng.randint(2, 5) if n_features is None else n_features
    features = [f.format(n=rng.randint(2, 60)) for f in rng.sample(pool, count)]
    features = [f[0].upper() + f[1:] for f in features]
    return {
        "slug": f"{slugify(title)}-{index:04d}",
        "title": title,
        "category": category,
        "price": round(rng.uniform(4, 400), 2),
        "features": features,
        "promo": rng.random() < 0.25,
    }


def main() -> None:
    rng = random.Random(20261123)
    rows: list[bytes] = []
    index = 0
    for _ in range(520):
        index += 1
        rows.append(json.dumps(item(rng, index)).encode())
    for n_features, how_many in ((1, 6), (0, 4)):  # thin items: escalated, and rejected for length
        for _ in range(how_many):
            index += 1
            rows.append(json.dumps(item(rng, index, n_features)).encode())
    for _ in range(3):  # the model refuses these
        index += 1
        rows.append(json.dumps(item(rng, index, 3, category="Restricted")).encode())
    for _ in range(2):  # same product listed twice: the second is a near-copy
        index += 1
        twin = item(rng, index)
        rows.append(json.dumps(twin).encode())
        rows.append(json.dumps({**twin, "slug": twin["slug"] + "-dup"}).encode())
    broken = [
        json.dumps(
            {"title": "No Slug Lamp", "category": "Home Office", "price": 12.5, "features": ["Bright"]}
        ).encode(),
        json.dumps({"slug": "Bad Slug!", "title": "Shouting Kettle", "category": "Kitchen", "price": 20}).encode(),
        json.dumps({**json.loads(rows[0]), "title": "Duplicate of the first row"}).encode(),
        json.dumps(
            {"slug": "price-as-text-0001", "title": "Text Price Mug", "category": "Kitchen", "price": "abc"}
        ).encode(),
        json.dumps(
            {"slug": "oversized-title-0001", "title": "Huge " * 1000, "category": "Kitchen", "price": 5}
        ).encode(),
        b'{"slug": "bad-utf8-0001", "title": "Caf\xe9 Press", "category": "Kitchen", "price": 30}',
        b'{"slug": "truncated-json-0001", "title": "Half a Row", "category": ',
        json.dumps(
            {"slug": "features-number-0001", "title": "Odd Tent", "category": "Outdoor", "price": 80, "features": 7}
        ).encode(),
    ]
    for position, row in zip((37, 120, 233, 301, 388, 450, 499, 530), broken, strict=True):
        rows.insert(position, row)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(b"\n".join(rows) + b"\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()

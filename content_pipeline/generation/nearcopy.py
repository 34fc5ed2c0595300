"""Near-copies: a MinHash sketch of each accepted description, and an index that refuses a new one too close to another."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter

from content_pipeline.generation.qa import OK, Verdict, words

SKETCH_SIZE = 32
NEAR_COPY_JACCARD = 0.8
FREQUENT_HASH = 64  # a shingle hash in more sketches than this is boilerplate for candidate counting
_SHINGLE_HASH = hashlib.blake2b(digest_size=7)


def sketch(text: str) -> list[int]:
    """Bottom-k MinHash sketch of the text's word 3-shingles: a compact fingerprint for near-copy checks
    (56-bit blake2b of each shingle; the hasher is copied, not made anew, for each one)."""
    found = words(text)
    shingles = {" ".join(found[i : i + 3]) for i in range(max(1, len(found) - 2))}
    hashes = set()
    for shingle in shingles:
        hasher = _SHINGLE_HASH.copy()
        hasher.update(shingle.encode())
        hashes.add(int.from_bytes(hasher.digest(), "big"))
    return sorted(hashes)[:SKETCH_SIZE]


def estimate_jaccard(a: list[int], b: list[int]) -> float:
    union_k = sorted(set(a) | set(b))[:SKETCH_SIZE]
    if not union_k:
        return 0.0
    both = set(a) & set(b)
    return sum(h in both for h in union_k) / len(union_k)


class NearCopyIndex:
    """Sketches of content already accepted; `claim` checks a new one and registers it atomically."""

    def __init__(self) -> None:
        self._by_hash: dict[int, set[str]] = {}
        self._sketches: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sketches)

    def add(self, slug: str, signature: list[int]) -> None:
        self._sketches[slug] = signature
        for h in signature:
            self._by_hash.setdefault(h, set()).add(slug)

    def _match(self, slug: str, signature: list[int]) -> str | None:
        # A near-copy (estimated Jaccard >= J) shares at least J x len(signature) hashes of its sketch.
        # Hashes of boilerplate are shared by many items; counting only the rare ones, it must still share
        # J x len - (frequent hashes in the signature) of them. Lossless, and no longer O(items) per claim.
        need = len(signature) * NEAR_COPY_JACCARD
        postings = [self._by_hash.get(h, ()) for h in signature]
        frequent = sum(len(p) > FREQUENT_HASH for p in postings)
        rare_only = need - frequent > 0  # else the sketch is nearly all boilerplate: count every hash
        counts: Counter[str] = Counter()
        for posting in postings:
            if len(posting) <= FREQUENT_HASH or not rare_only:
                counts.update(posting)
        for other, shared in counts.most_common():
            if shared < (need - frequent if rare_only else need):
                break
            if other != slug and estimate_jaccard(signature, self._sketches[other]) >= NEAR_COPY_JACCARD:
                return other
        return None

    def claim(self, slug: str, signature: list[int]) -> Verdict:
        """OK and registered, or a near_copy verdict naming the item it copies."""
        with self._lock:
            other = self._match(slug, signature)
            if other is not None:
                return Verdict(False, "near_copy", f"the description nearly copies that of {other!r}")
            self.add(slug, signature)
            return OK

"""Near-duplicate scenes: MinHash signatures of word 5-grams, clustered by LSH at Jaccard >= 0.8.

Invariants:
- Deterministic: a fixed seed and permutation count, so a signature stored by one check compares with
  one computed by the next; clusters do not depend on the order scenes are given in.
- Not quadratic in the corpus: candidates come from LSH buckets, and identical signatures are grouped
  before the index, so thousands of copies of one text cost one entry. (A cluster of k distinct but near
  texts still costs about k squared comparisons: LSH's own worst case.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

PERMUTATIONS = 64
SEED = 1
THRESHOLD = 0.8
SHINGLE = 5
SCHEME = "affine32"  # datasketch 2's hashing scheme, named so stored signatures read back the same
_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True, slots=True)
class Twin:
    """A scene's near-duplicate cluster (named by its smallest scene key) and how many others are in it."""

    cluster: str
    twins: int


def shingles(text: str) -> set[bytes]:
    """The text's lower-cased word 5-grams (a shorter text is one shingle)."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + SHINGLE]).encode() for i in range(len(words) - SHINGLE + 1)}


def signature(text: str) -> bytes:
    """The text's MinHash (`PERMUTATIONS` 64-bit values), as bytes."""
    from datasketch import MinHash

    found = MinHash(num_perm=PERMUTATIONS, seed=SEED, scheme=SCHEME)
    found.update_batch(list(shingles(text)))
    return bytes(found.hashvalues.astype("<u8").tobytes())


def clusters(signatures: Iterable[tuple[str, bytes]]) -> dict[str, Twin]:
    """Every scene's cluster: scenes linked (transitively) by an estimated Jaccard >= `THRESHOLD`.

    Scenes with the same signature are one cluster from the start and go into the index once, so copies of a
    text cost nothing to compare; the rest is LSH candidates, each checked with the Jaccard estimate.
    """
    same: dict[bytes, list[str]] = {}
    for key, sig in sorted(signatures):
        same.setdefault(sig, []).append(key)
    parent = {key: keys[0] for keys in same.values() for key in keys}
    for first, second in _similar({keys[0]: sig for sig, keys in same.items()}):
        _join(parent, first, second)
    return _named(parent)


def _similar(distinct: dict[str, bytes]) -> Iterator[tuple[str, str]]:
    """Pairs of (distinct) signatures whose Jaccard estimate reaches `THRESHOLD`, found through LSH buckets."""
    import numpy as np
    from datasketch import LeanMinHash, MinHashLSH

    found = {key: LeanMinHash(seed=SEED, hashvalues=np.frombuffer(sig, dtype="<u8"), scheme=SCHEME)
             for key, sig in sorted(distinct.items())}  # fmt: skip
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=PERMUTATIONS)
    with lsh.insertion_session() as session:
        for key, minhash in found.items():
            session.insert(key, minhash, check_duplication=False)
    for key, minhash in found.items():
        for other in sorted(lsh.query(minhash)):
            if other > key and minhash.jaccard(found[other]) >= THRESHOLD:
                yield key, other


def _root(parent: dict[str, str], key: str) -> str:
    while parent[key] != key:
        parent[key] = parent[parent[key]]
        key = parent[key]
    return key


def _join(parent: dict[str, str], a: str, b: str) -> None:
    first, second = sorted((_root(parent, a), _root(parent, b)))
    parent[second] = first  # the smaller key names the cluster


def _named(parent: dict[str, str]) -> dict[str, Twin]:
    sizes: dict[str, int] = {}
    roots = {key: _root(parent, key) for key in parent}
    for root in roots.values():
        sizes[root] = sizes.get(root, 0) + 1
    return {key: Twin(root, sizes[root] - 1) for key, root in roots.items()}

"""Near-duplicate scenes: MinHash signatures of word 5-grams, clustered through LSH buckets at Jaccard >= 0.8.

A scene's near twins are the scenes linked to it, directly or through others, by a pair that shares an LSH
bucket and whose MinHash Jaccard estimate is at least `THRESHOLD`; its cluster is named by its smallest
scene key.

Invariants:
- Deterministic: a fixed seed, permutation count and hashing scheme, so a signature stored by one check
  compares with one computed by the next; the clusters are the connected components of a graph that does
  not depend on the order the scenes come in.
- Not quadratic in the corpus: pairs are only ever looked for inside LSH buckets, identical signatures go into
  the index once, and a scene is compared with a group of its bucket only while it is not yet in that group's
  cluster, so a cluster of thousands of near copies costs about one comparison per scene and band. Only a
  bucket of many texts that share a band but are not near each other costs its size squared (LSH's own worst
  case, and rare: the bands are chosen so that texts below Jaccard 0.5 seldom share one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PERMUTATIONS = 128
"""Hash values per signature: the estimate's standard error at Jaccard 0.8 is 0.035 (0.05 with 64)."""
SEED = 1
THRESHOLD = 0.8
SHINGLE = 5
SCHEME = "affine32"  # datasketch 2's hashing scheme, named so stored signatures read back the same
WEIGHTS = (0.05, 0.95)
"""LSH weights of a false positive and a false negative: 16 bands of 8, so a pair at Jaccard 0.8 shares a band
95% of the time (datasketch's even weights give 40%); the surplus candidates are dropped by the estimate."""
_WORD = re.compile(r"[\w']+")
_CHUNK = 64  # bucket members compared with a scene at once


@dataclass(frozen=True, slots=True)
class Twin:
    """A scene's near-duplicate cluster (named by its smallest scene key) and how many others are in it."""

    cluster: str
    twins: int


def shingles(text: str) -> set[bytes]:
    """The text's lower-cased word 5-grams (a text of fewer words is one shingle: all of them)."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + SHINGLE]).encode() for i in range(len(words) - SHINGLE + 1)}


def signature(text: str) -> bytes:
    """The text's MinHash: `PERMUTATIONS` hash values as little-endian uint64, 8 bytes each."""
    from datasketch import MinHash

    found = MinHash(num_perm=PERMUTATIONS, seed=SEED, scheme=SCHEME)
    found.update_batch(list(shingles(text)))
    return bytes(found.hashvalues.astype("<u8").tobytes())


def clusters(signatures: Iterable[tuple[str, bytes]]) -> dict[str, Twin]:
    """Every scene's cluster, by scene key (keys are unique; a key given twice keeps its largest signature).

    Raises:
        ValueError: a signature is not `PERMUTATIONS` hash values long (measured with other settings).
    """
    import numpy as np

    same: dict[bytes, list[str]] = {}
    for key, sig in sorted(dict(sorted(signatures)).items()):
        _check_length(key, sig)
        same.setdefault(sig, []).append(key)  # keys ascend, so each list starts with its smallest key
    named = sorted(same.values())  # distinct signature i is named by named[i][0]; smaller i, smaller key
    values = np.frombuffer(b"".join(_signature_of(same, named)), dtype="<u8").reshape(len(named), PERMUTATIONS)
    parent = list(range(len(named)))
    for bucket in _buckets(values):
        _link(bucket, values, parent)
    return _twins(named, parent)


def _check_length(key: str, sig: bytes) -> None:
    if len(sig) != PERMUTATIONS * 8:
        raise ValueError(f"the signature of scene {key} has {len(sig)} bytes, not {PERMUTATIONS * 8}: "
                         "it was measured with other settings; measure the scenes again")  # fmt: skip


def _signature_of(same: dict[bytes, list[str]], named: list[list[str]]) -> list[bytes]:
    by_first = {keys[0]: sig for sig, keys in same.items()}
    return [by_first[keys[0]] for keys in named]


def _buckets(values: npt.NDArray[np.uint64]) -> list[list[int]]:
    """The LSH buckets (rows that share a band) holding two signatures or more, members ascending."""
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=PERMUTATIONS, weights=WEIGHTS)
    with lsh.insertion_session() as session:
        for row, hashvalues in enumerate(values):
            session.insert(row, LeanMinHash(seed=SEED, hashvalues=hashvalues, scheme=SCHEME), check_duplication=False)
    return sorted(sorted(table.get(band)) for table in lsh.hashtables
                  for band, size in table.itemcounts().items() if size > 1)  # fmt: skip


def _link(bucket: Sequence[int], values: npt.NDArray[np.uint64], parent: list[int]) -> None:
    """Join every member of the bucket to each earlier member's cluster it is near, skipping its own cluster.

    `groups` holds the members seen so far by their cluster's root; a member is compared with another group
    until one of that group is near (then the clusters are one), never with a group already its cluster.
    """
    groups: dict[int, list[int]] = {}
    for row in bucket:
        for root in list(groups):
            if _root(parent, root) != _root(parent, row) and _near_any(values, row, groups[root]):
                _join(parent, row, root)
        groups = _regrouped(groups, row, parent)


def _near_any(values: npt.NDArray[np.uint64], row: int, others: list[int]) -> bool:
    """Whether the Jaccard estimate of `row` and one of `others` reaches `THRESHOLD`, checked a chunk at a time."""
    for start in range(0, len(others), _CHUNK):
        same = (values[others[start : start + _CHUNK]] == values[row]).sum(axis=1)
        if (same >= THRESHOLD * PERMUTATIONS).any():
            return True
    return False


def _regrouped(groups: dict[int, list[int]], row: int, parent: list[int]) -> dict[int, list[int]]:
    """The bucket's groups with `row` added, and groups whose clusters were just joined merged into one.

    The smaller list goes into the larger, so merging a bucket of k members costs k log k, not k squared.
    """
    merged: dict[int, list[int]] = {}
    for root, members in groups.items():
        into = merged.setdefault(_root(parent, root), members)
        if into is not members:
            small, large = sorted((into, members), key=len)
            large.extend(small)
            merged[_root(parent, root)] = large
    merged.setdefault(_root(parent, row), []).append(row)
    return merged


def _root(parent: list[int], row: int) -> int:
    while parent[row] != row:
        parent[row] = parent[parent[row]]
        row = parent[row]
    return row


def _join(parent: list[int], a: int, b: int) -> None:
    first, second = sorted((_root(parent, a), _root(parent, b)))
    parent[second] = first  # the smaller row, so the smaller key, names the cluster


def _twins(named: list[list[str]], parent: list[int]) -> dict[str, Twin]:
    roots = [_root(parent, row) for row in range(len(named))]
    sizes = [0] * len(named)
    for row, root in enumerate(roots):
        sizes[root] += len(named[row])
    return {key: Twin(named[root][0], sizes[root] - 1)
            for row, root in enumerate(roots) for key in named[row]}  # fmt: skip

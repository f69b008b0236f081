"""The corpus measures: near twins on texts and signatures made by hand, and the per-stage figures, each
worked out by hand on a small made-up database and checked against SQL on a real run of first-steps."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from conftest import ok, rows, run_cli

from sim.corpus.quality import diversity
from sim.corpus.quality.twins import PERMUTATIONS, Twin, clusters, signature

WORDS = [f"w{i}" for i in range(200)]
TEXT = " ".join(WORDS)


def changed(*positions: int) -> str:
    """TEXT with the words at `positions` replaced: each change takes away 5 of its 196 word 5-grams."""
    return " ".join("changed" if i in positions else w for i, w in enumerate(WORDS))


def made(values: np.ndarray) -> bytes:
    """A signature with the given hash values, written as `signature` writes them."""
    return values.astype("<u8").tobytes()


def test_a_signature_is_fixed_and_reads_lower_cased_words() -> None:
    sig = signature("I like the red ball.")
    assert len(sig) == PERMUTATIONS * 8
    assert np.frombuffer(sig, "<u8")[:3].tolist() == [2719259565, 2898143014, 1069223604]  # stored ones still compare
    assert signature("i LIKE the red, ball") == sig
    assert signature("Hi there") == signature("hi, THERE!") != signature("there hi")  # under 5 words: one shingle


def test_identical_texts_are_one_cluster_named_by_the_smallest_key() -> None:
    found = clusters([("b", signature(TEXT)), ("a", signature(TEXT)), ("c", signature("A walk to the shops."))])
    assert found == {"a": Twin("a", 1), "b": Twin("a", 1), "c": Twin("c", 0)}


def test_two_words_changed_in_two_hundred_is_a_twin_but_an_unrelated_text_is_not() -> None:
    # Jaccard of the 5-grams: 186 shared of 206, 0.90; the reversed text shares none.
    found = clusters([("a", signature(TEXT)), ("b", signature(changed(50, 150))),
                      ("c", signature(" ".join(reversed(WORDS))))])  # fmt: skip
    assert found == {"a": Twin("a", 1), "b": Twin("a", 1), "c": Twin("c", 0)}


def test_half_the_text_shared_is_not_a_twin() -> None:
    half = " ".join(WORDS[:100] + [f"v{i}" for i in range(100)])  # Jaccard 96 / 296, 0.32
    assert clusters([("a", signature(TEXT)), ("b", signature(half))])["b"] == Twin("b", 0)


def chain() -> list[tuple[str, bytes]]:
    """b is near a and c (108 of 128 hash values equal, 0.84), a and c are not (88 of 128, 0.69)."""
    a = np.arange(PERMUTATIONS, dtype=np.uint64)
    b, c = a.copy(), a.copy()
    b[:20] += 1000
    c[:20] += 1000
    c[20:40] += 1000
    far = np.arange(PERMUTATIONS, dtype=np.uint64) + 5000
    return [("a", made(a)), ("b", made(b)), ("c", made(c)), ("far", made(far)), ("far-copy", made(far))]


def test_clusters_join_through_a_scene_near_both() -> None:
    assert clusters(chain()) == {"a": Twin("a", 2), "b": Twin("a", 2), "c": Twin("a", 2),
                                 "far": Twin("far", 1), "far-copy": Twin("far", 1)}  # fmt: skip


def test_the_order_of_the_scenes_does_not_change_the_clusters() -> None:
    given = chain() + [("near", signature(changed(10))), ("base", signature(TEXT))]
    expected = clusters(given)
    for order in itertools.islice(itertools.permutations(given), 0, 5040, 97):
        assert clusters(order) == expected
    assert expected["near"] == Twin("base", 1)


def test_a_signature_of_other_settings_is_refused() -> None:
    with pytest.raises(ValueError, match=r"the signature of scene a has 512 bytes, not 1024: .* measure the scenes"):
        clusters([("a", bytes(512))])


def test_three_thousand_copies_and_three_thousand_near_copies_are_two_clusters() -> None:
    copies = [(f"k{i:04d}", signature(TEXT)) for i in range(3000)]
    rng = random.Random(1)
    near = [(f"n{i:04d}", made(_one_value_changed(rng, i))) for i in range(3000)]  # each 127 of 128 like base
    found = clusters(copies + near)
    assert {t.cluster for t in found.values()} == {"k0000", "n0000"}
    assert found["k2999"] == Twin("k0000", 2999) and found["n2999"] == Twin("n0000", 2999)


def _one_value_changed(rng: random.Random, i: int) -> np.ndarray:
    values = np.arange(PERMUTATIONS, dtype=np.uint64) + 10_000
    values[rng.randrange(PERMUTATIONS)] = 100_000 + i
    return values


# A made-up corpus, small enough to count by hand. Stage "toddler" (rank 0) has scene ids a to d, k1 and k2
# being two variations of a; stage "early" (rank 1, but first by name) has ids e (k6, k7) and f (k8).
SCENES = [  # scene_key, learner, curriculum position, id, stage, rank, opening, values
    ("k1", "sam", 1, "a", "toddler", 0, "I am two. I remember when Grandpa told me, “Look.”", ["patience"]),
    ("k2", "sam", 2, "a", "toddler", 0, "I am two. I remember when Mia told me, “Wait!”", ["patience", "sharing"]),
    ("k3", "sam", 5, "b", "toddler", 0, "I am two. I remember when Ms. Rivera told me, “Share.”", ["sharing"]),
    ("k4", "sam", 6, "c", "toddler", 0, "I am two. It is raining and the garden is wet.", []),
    ("k5", "sam", 3, "d", "toddler", 0, "I am two. It is sunny and the park is full.", ["patience"]),
    ("k6", "sam", 4, "e", "early", 1, "I am three. We bake bread in the kitchen today.", ["care"]),
    ("k7", "sam", 7, "e", "early", 1, "I am three. We bake bread in the kitchen again.", ["care"]),
    ("k8", "ana", 1, "f", "early", 1, "I am three. Dad reads a long story to me.", ["care"]),
]
TURNS = {
    "k1": ["Look, a ball!", "Ball ball.", "Can I have the ball?"], "k2": ["Look, a ball!"],
    "k3": ["can I have the ball", "I want the red ball now."], "k4": ["Yes.", "My cup is empty.", "My cup is empty!"],
    "k5": ["I want the red ball now.", "I want the red ball now."],
    "k6": ["We bake bread in the oven."], "k7": ["We bake bread in the oven."], "k8": ["Dad reads a story."],
}  # fmt: skip


@pytest.fixture
def made_up() -> Iterator[duckdb.DuckDBPyConnection]:
    """The made-up corpus: only the columns the measures read, and a `training_text` with its curriculum order."""
    con = duckdb.connect()
    con.execute('CREATE TABLE scenes (scene_key VARCHAR, learner VARCHAR, position INTEGER, pack VARCHAR, '
                'scene VARCHAR, stage VARCHAR, stage_rank INTEGER, opening VARCHAR, "values" VARCHAR[])')  # fmt: skip
    con.executemany("INSERT INTO scenes VALUES (?, ?, ?, 'p', ?, ?, ?, ?, ?)", SCENES)
    con.execute("CREATE TABLE turns (scene_key VARCHAR, text VARCHAR)")
    con.executemany("INSERT INTO turns VALUES (?, ?)", [(k, t) for k, lines in TURNS.items() for t in lines])
    con.execute("CREATE VIEW training_text AS SELECT scene_key AS id, learner, position AS curriculum_position "
                "FROM scenes")  # fmt: skip
    yield con
    con.close()


def test_words_are_split_at_spaces_with_punctuation_stripped_from_their_edges() -> None:
    with duckdb.connect() as con:
        got = con.execute(f"SELECT {diversity.words('?')}", ["“Don’t,” said Inês — twenty-two!  "]).fetchone()
    assert got == (["don’t", "said", "inês", "twenty-two"],)


def test_distinct_n_by_hand(made_up: duckdb.DuckDBPyConnection) -> None:
    # toddler: 45 words, 15 distinct; 34 bigrams, 15 distinct; 24 trigrams, 10 distinct ("ball ball" has none).
    assert diversity.distinct_n(made_up, 1) == pytest.approx({"toddler": 15 / 45, "early": 10 / 16})
    assert list(diversity.distinct_n(made_up, 1)) == ["toddler", "early"]  # by rank, not by name
    assert diversity.distinct_n(made_up, 2) == pytest.approx({"toddler": 15 / 34, "early": 8 / 13})
    assert diversity.distinct_n(made_up, 3) == pytest.approx({"toddler": 10 / 24, "early": 6 / 10})
    with pytest.raises(ValueError, match="1- to 3-grams, not 4-grams"):
        diversity.distinct_n(made_up, 4)


def test_repeated_openings_by_hand(made_up: duckdb.DuckDBPyConnection) -> None:
    # toddler: "i remember when _" opens a sentence in ids a and b, 2 of 4: k1, k2, k3 of 5 scenes. "I am two."
    # is in all, but too short to be a frame. early: "we bake bread in" is only id e's, in its two variations.
    assert diversity.repeated_openings(made_up) == {"toddler": 3 / 5, "early": 0.0}


def test_verbatim_lines_by_hand(made_up: duckdb.DuckDBPyConnection) -> None:
    # toddler, lines of 4 words or more: "can i have the ball" (k1, k3) and "i want the red ball now" (k3, k5 twice)
    # are said in another scene; "my cup is empty" twice, but only in k4. early: k6 and k7 say the same line.
    assert diversity.verbatim_lines(made_up) == {"toddler": 5 / 7, "early": 2 / 3}


def test_coverage_by_hand(made_up: duckdb.DuckDBPyConnection) -> None:
    assert diversity.coverage(made_up) == {"toddler": {"patience": 3, "sharing": 2}, "early": {"care": 3}}


def test_adjacent_twins_follow_each_learners_curriculum(made_up: duckdb.DuckDBPyConnection) -> None:
    # sam's order is k1 k2 k5 k6 k3 k4 k7: of 6 pairs, k1-k2 and k5-k6 are twins (k4 is in no cluster);
    # k7 and k8 are in one cluster, but are two learners' scenes.
    twins = {k: Twin(c, 1) for k, c in [("k1", "k1"), ("k2", "k1"), ("k3", "k3"), ("k5", "k5"), ("k6", "k5"),
                                        ("k7", "k7"), ("k8", "k7")]}  # fmt: skip
    assert diversity.adjacent_twins(made_up, twins) == 2 / 6
    assert diversity.adjacent_twins(made_up, {}) == 0.0


@pytest.fixture
def first_steps(shipped_world: Path) -> Path:
    """`sim run scenarios/first-steps --variations 3`: 10 scenes (4 toddler, 6 early childhood), 3 lives each."""
    ok(run_cli("run", "scenarios/first-steps", "--variations", "3", "--db", "d.duckdb"))
    return shipped_world / "d.duckdb"


def test_the_figures_of_a_real_run(first_steps: Path) -> None:
    with duckdb.connect(str(first_steps), read_only=True) as con:
        coverage = diversity.coverage(con)
        assert [(s, v, n) for s, counts in coverage.items() for v, n in counts.items()] == rows(
            first_steps, 'SELECT stage, v, count(*) FROM scenes, unnest("values") AS u(v) '
                         "GROUP BY stage, v ORDER BY min(stage_rank), v")  # fmt: skip
        for n in (1, 2, 3):
            assert diversity.distinct_n(con, n) == pytest.approx(_distinct_in_python(first_steps, n))
        assert list(coverage) == ["toddler", "early_childhood"]
        # Every opening after the first stage's recalls a memory in the generator's formula, none before.
        sql = "SELECT stage, avg((opening LIKE '%I remember when%')::INT) FROM scenes GROUP BY stage"
        memories = {str(stage): float(str(share)) for stage, share in rows(first_steps, sql)}
        assert diversity.repeated_openings(con) == pytest.approx(memories)
        assert memories == pytest.approx({"toddler": 0.0, "early_childhood": 15 / 18})
        assert all(0 < share <= 1 for share in diversity.verbatim_lines(con).values())


def test_adjacent_twins_of_a_real_run_on_made_up_clusters(first_steps: Path) -> None:
    keys = [(str(k), str(i)) for k, i in rows(first_steps, "SELECT scene_key, pack || '/' || scene FROM scenes")]
    with duckdb.connect(str(first_steps), read_only=True) as con:
        assert diversity.adjacent_twins(con, {k: Twin("all", 29) for k, _ in keys}) == 1.0
        assert diversity.adjacent_twins(con, {k: Twin(k, 0) for k, _ in keys}) == 0.0
        # a cluster per scene id: its 3 variations sit back to back, so 20 of the 29 pairs are twins
        assert diversity.adjacent_twins(con, {k: Twin(str(i), 2) for k, i in keys}) == 20 / 29


def _distinct_in_python(db: Path, n: int) -> dict[str, float]:
    """distinct-n by its definition, for a second opinion on the SQL."""
    grams: dict[str, list[str]] = {}
    for stage, text in rows(db, "SELECT stage, text FROM turns JOIN scenes USING (scene_key)"):
        words = [w for w in (re.sub(r"^\W+|\W+$", "", w) for w in str(text).lower().split()) if w]
        grams.setdefault(str(stage), []).extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return {stage: len(set(found)) / len(found) for stage, found in grams.items()}

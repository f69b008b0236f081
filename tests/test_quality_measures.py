"""The per-scene measures and the near-twin search, on scenes written by hand: each figure exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sim.corpus.quality.measures import measure
from sim.corpus.quality.readability import grade
from sim.corpus.quality.scene import Line, Person, Recalled, SceneText, StageTargets
from sim.corpus.quality.twins import clusters, signature

SAM = Person("sam", "Sam Hale", "I", "they/them")
QUINN = Person("ms-quinn", "Rose Quinn", "Ms. Quinn", "she/her")
LEO = Person("leo", "Leo Park", "Leo", "he/him")


def scene(*lines: tuple[str, str], opening: str = "I am seven. I sit by the window.", **changes: object) -> SceneText:
    """A middle-childhood scene with Ms. Quinn and Leo; lines are (label, text), `I` being the learner."""
    ids = {"I": "sam", "Ms. Quinn": "ms-quinn", "Leo": "leo"}
    made = SceneText(
        scene_key="k1", stage="middle_childhood", stage_rank=3, age=7, pack="p", scene="s", variation=0,
        backend="scripted", learner=SAM, opening=opening, reflection="I learned to wait my turn.",
        lines=tuple(Line(label, ids.get(label, label), label == "I", text) for label, text in lines),
        cast=(QUINN, LEO), values=("patience",), recalled=(), targets=StageTargets(6, (0.0, 4.0)),
        people_here=frozenset({"sam", "ms-quinn", "leo"}),
    )  # fmt: skip
    return replace(made, **changes)  # type: ignore[arg-type]


def test_words_per_turn_against_the_stage_limit() -> None:
    got = measure(scene(("I", "Can I go first?"), ("Leo", "No."), ("I", "Please can I go first today, Ms. Quinn?")))
    assert (got.learner_turns, got.learner_words_max, got.over_limit_turns) == (2, 8, 1)
    assert got.learner_words_mean == 6.0
    assert (got.turns, got.speakers, got.empty_lines) == (3, 2, 0)


def test_a_learner_line_under_another_label_or_an_i_that_is_not_the_learner() -> None:
    assert measure(scene(("I", "Hi."), ("Leo", "Hi."))).i_label_ok
    wrong = scene(("I", "Hi."), ("Leo", "Hi."))
    assert not measure(replace(wrong, lines=(Line("Sam", "sam", True, "Hi."),))).i_label_ok
    assert not measure(replace(wrong, lines=(Line("I", "leo", False, "Hi."),))).i_label_ok


def test_the_learners_name_in_the_narration_outside_quotes() -> None:
    assert measure(scene(opening="Sam sits by the window. I wait.")).name_in_narration == 1
    assert measure(scene(opening="I wait. Leo says, “Sam, come here.”")).name_in_narration == 0
    assert not measure(scene(opening="Sam sits by the window.")).first_person_narration
    assert measure(scene()).first_person_narration


def test_a_tag_said_twice_is_a_repeat_of_the_speaker_and_of_the_record() -> None:
    got = measure(scene(("I", "No way. Like Leo said."), ("Leo", "What?"), ("I", "Three pieces. Like Leo said.")))
    assert (got.self_repeats, got.repeated_sentences) == (1, 1)
    short = measure(scene(("I", "Yes."), ("Leo", "Yes."), ("I", "Yes.")))  # too short to count
    assert (short.self_repeats, short.repeated_sentences) == (0, 0)


def test_meta_talk() -> None:
    assert measure(scene(("Leo", "As an AI language model, I cannot play tag."))).meta_talk == 1
    assert measure(scene(("Leo", "I forgot my lines in the school play's script."))).meta_talk == 0


def test_a_she_called_they_is_a_pronoun_mismatch() -> None:
    assert measure(scene(("I", "Ms. Quinn said they would help us."))).pronoun_mismatches == 1
    assert measure(scene(("I", "Ms. Quinn said she would help us."))).pronoun_mismatches == 0
    assert measure(scene(("I", "Leo scored. They ran off laughing."))).pronoun_mismatches == 1
    assert measure(scene(("I", "Ms. Quinn told Leo she was proud."))).pronoun_mismatches == 0  # two sets: skipped
    # Someone else's pronoun in a later clause, or a possessive opening the next sentence, is not theirs.
    assert measure(scene(opening="I am seven. Ms. Quinn pins a cartoon up: a man with a bag on his head.",
                         reflection="Leo was right, not behind their back. Their team won.")).pronoun_mismatches == 0


def test_a_recalled_scene_related_by_a_person_or_a_value() -> None:
    assert measure(scene()).recall_related is None
    stranger = Recalled("old", frozenset({"grandpa"}), frozenset({"honesty"}))
    assert measure(scene(recalled=(stranger,))).recall_related is False
    assert measure(scene(recalled=(replace(stranger, values=frozenset({"patience"})),))).recall_related is True
    assert measure(scene(recalled=(replace(stranger, people=frozenset({"leo"})),))).recall_related is True


def test_reading_grade_needs_twenty_words_and_grows_with_long_words() -> None:
    assert grade(["Teddy spill it."]) is None
    simple = grade(["I want the ball. Give me the ball now. It is my ball. I had it first, you know."] * 2)
    learned = grade(["Responsibility demands considerable deliberation regarding consequences. "
                     "Institutional accountability requires transparent documentation."] * 2)  # fmt: skip
    assert simple is not None and learned is not None
    assert simple < 2 < 12 < learned


def test_the_grade_band_holds_only_its_top_edge() -> None:
    words = ["I want the ball. Give me the ball now. It is my ball. I had it first, you know."] * 2
    low = measure(scene(*(("I", w) for w in words), targets=StageTargets(40, (6.0, 12.0))))
    assert low.learner_grade is not None and low.learner_grade < 6 and low.grade_in_band


@pytest.mark.parametrize("copies", [2, 3000])
def test_copies_of_a_text_are_one_cluster_whatever_the_order(copies: int) -> None:
    text = "I like the big red ball and I want to play with it all day long in the garden with my sister"
    other = "Completely different words about a school trip to the museum of natural history and dinosaurs"
    sigs = [(f"k{i:05d}", signature(text)) for i in range(copies)] + [("z", signature(other))]
    found = clusters(sigs)
    assert found["k00001"].cluster == "k00000" and found["k00001"].twins == copies - 1
    assert found["z"].twins == 0
    assert clusters(reversed(sigs)) == found


def test_a_few_words_changed_in_a_long_text_is_a_twin_and_an_unrelated_text_is_not() -> None:
    words = [f"w{i}" for i in range(300)]
    near = words[:150] + ["changed"] + words[151:]
    found = clusters([("a", signature(" ".join(words))), ("b", signature(" ".join(near))),
                      ("c", signature(" ".join(reversed(words))))])  # fmt: skip
    assert (found["b"].cluster, found["c"].twins) == ("a", 0)

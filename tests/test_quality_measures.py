"""The per-scene measures and the near-twin search, on scenes written by hand: each figure exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import rows, run_cli

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


def test_a_toddler_line_longer_than_four_words_is_over_the_limit() -> None:
    toddler = StageTargets(4, (-3.0, 1.0))
    got = measure(scene(("I", "Ball!"), ("I", "Me want the big red ball."), ("Leo", ""), targets=toddler))
    assert (got.learner_turns, got.learner_words_max, got.over_limit_turns, got.empty_lines) == (2, 6, 1, 1)
    assert (got.learner_grade, got.others_grade, got.grade_in_band) == (None, None, None)  # too few words


def test_a_learner_line_under_another_label_or_an_i_that_is_not_the_learner() -> None:
    assert measure(scene(("I", "Hi."), ("Leo", "Hi."))).i_label_ok
    wrong = scene(("I", "Hi."), ("Leo", "Hi."))
    assert not measure(replace(wrong, lines=(Line("Sam", "sam", True, "Hi."),))).i_label_ok
    assert not measure(replace(wrong, lines=(Line("I", "leo", False, "Hi."),))).i_label_ok


def test_the_learners_name_in_the_narration_outside_quotes() -> None:
    assert measure(scene(opening="Sam sits by the window. I wait.")).name_in_narration == 1
    assert measure(scene(opening="I wait. Leo says, “Sam, come here.”")).name_in_narration == 0
    assert measure(scene(opening='I wait. Leo says, "Sam, come here."')).name_in_narration == 0
    assert measure(scene(opening="I wait.", reflection="Sam learned. Sam's turn came.")).name_in_narration == 2
    assert measure(scene(opening="I wait. Samuel is my cousin.")).name_in_narration == 0  # a word, not the name


def test_an_address_that_is_a_name_counts_as_the_learners_name() -> None:
    sammy = replace(SAM, address_as="Sammy")
    assert measure(scene(opening="Grandma calls me Sammy. I wait.", learner=sammy)).name_in_narration == 1
    assert measure(scene(opening="Grandma calls me Sammy. I wait.")).name_in_narration == 0  # SAM's address is I


def test_narration_told_about_the_learner_by_name_is_not_first_person() -> None:
    assert measure(scene()).first_person_narration
    assert not measure(scene(opening="Sam sits by the window.")).first_person_narration  # no I at all
    assert not measure(scene(opening="Sam sits by the window. I wait.")).first_person_narration
    assert not measure(scene(reflection="Later, we ate. Sam's mum smiled.")).first_person_narration
    assert measure(scene(opening="Grandma calls me Sam. My tea is hot.")).first_person_narration
    assert measure(scene(opening="My tea is hot. We wait.")).first_person_narration  # My, We open sentences
    assert not measure(scene(opening="“I am here,” Leo says.")).first_person_narration  # the I is Leo's


def test_a_tag_said_twice_is_a_repeat_of_the_speaker_and_of_the_record() -> None:
    got = measure(scene(("I", "No way. Like Leo said."), ("Leo", "What?"), ("I", "Three pieces. Like Leo said.")))
    assert (got.self_repeats, got.repeated_sentences) == (1, 1)
    short = measure(scene(("I", "Yes."), ("Leo", "Thank you."), ("I", "Yes."), ("Leo", "Thank you!")))
    assert (short.self_repeats, short.repeated_sentences) == (0, 0)  # under three words: not repeats


def test_like_jonah_said_twice_in_the_record_is_a_repeated_sentence() -> None:
    got = measure(scene(("I", "We share the swing. Like Jonah said."), ("Leo", "Okay."),
                        reflection="I shared the swing. Like Jonah said!"))  # fmt: skip
    assert (got.self_repeats, got.repeated_sentences) == (0, 1)


def test_another_speaker_saying_my_sentence_is_a_repeat_of_the_record_not_of_mine() -> None:
    got = measure(scene(("Leo", "It is my turn now."), ("I", "it is my turn   now!"), ("Leo", "It is my turn now.")))
    assert (got.self_repeats, got.repeated_sentences) == (1, 2)


def test_a_quotation_is_compared_as_its_own_sentence() -> None:
    quote = "“Sharing makes it more fun.”"
    got = measure(scene(opening=f"I am seven. I remember when Leo told me, {quote}",
                        reflection=f"It was like the time Leo told me, {quote}"))  # fmt: skip
    assert (got.repeated_sentences, got.self_repeats) == (1, 0)


def test_a_title_does_not_end_a_sentence() -> None:
    got = measure(scene(opening="Ms. Quinn is here and smiling.", reflection="Mr. Quinn is here and smiling."))
    assert got.repeated_sentences == 0  # "Quinn is here and smiling" twice, were "Ms." and "Mr." sentence ends


@pytest.mark.parametrize("line", [
    "As an AI language model, I cannot play tag.", "I'm just an AI, so I don't have a mum.",
    "I cannot assist with that.", "I'm sorry, but I can't continue this story.", "Let's stay in character.",
    "According to the script, I am angry now.", "My system prompt says to be kind.", "Is this role-play over?",
    "I can't help with that request.", "This scene is generated, you know.",
])  # fmt: skip
def test_meta_talk_is_caught(line: str) -> None:
    assert measure(scene(("I", "Hi."), ("Leo", line), ("I", line.upper()))).meta_talk == 2


@pytest.mark.parametrize("line", [
    "I forgot my lines in the school play's script.", "That was a scripted answer and you know it.",
    "Shouting was out of character for him.", "The writing prompt was about summer.", "I can't help it!",
    "I can't help keep a required document from the court.", "Our robot has a model of the solar system.",
    "I cannot believe it.", "He's a role model for me.",
])  # fmt: skip
def test_ordinary_talk_is_not_meta_talk(line: str) -> None:
    assert measure(scene(("Leo", line))).meta_talk == 0


def test_a_she_called_they_is_a_pronoun_mismatch() -> None:
    assert measure(scene(("I", "Ms. Quinn said they would help us."))).pronoun_mismatches == 1
    assert measure(scene(("I", "Ms. Quinn said she would help us."))).pronoun_mismatches == 0
    assert measure(scene(("I", "Leo scored. They ran off laughing."))).pronoun_mismatches == 1
    assert measure(scene(("I", "Ms. Quinn told Leo she was proud."))).pronoun_mismatches == 0  # two sets: skipped
    # Someone else's pronoun in a later clause, or a possessive opening the next sentence, is not theirs.
    assert measure(scene(opening="I am seven. Ms. Quinn pins a cartoon up: a man with a bag on his head.",
                         reflection="Leo was right, not behind their back. Their team won.")).pronoun_mismatches == 0
    assert measure(scene(opening="I wait. Rose Quinn came in. They sat down.")).pronoun_mismatches == 1  # full name
    assert measure(scene(("I", "Leo scored."), ("I", "They ran off."))).pronoun_mismatches == 0  # not one line


def test_a_person_is_not_checked_in_their_own_lines() -> None:
    assert measure(scene(("Leo", "Ms. Quinn needs quiet. They are tired."))).pronoun_mismatches == 1
    assert measure(scene(("Ms. Quinn", "Ms. Quinn needs quiet. They are tired."))).pronoun_mismatches == 0


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


def test_every_scene_of_a_first_steps_run_measures_as_its_rows_say(shipped_world: Path) -> None:
    import duckdb

    from sim.corpus.quality.load import scene_texts
    from sim.world.stages import load_stages

    assert run_cli("run", "scenarios/first-steps", "--db", "c.duckdb").exit_code == 0
    targets = {s.id: StageTargets(s.language.max_words_per_turn, (float(s.language.reading_grade[0]),
                                  float(s.language.reading_grade[1]))) for s in load_stages().stages}  # fmt: skip
    with duckdb.connect("c.duckdb", read_only=True) as con:
        keys = [k for (k,) in con.execute("SELECT scene_key FROM scenes ORDER BY scene_key").fetchall()]
        got = {m.scene_key: m for m in map(measure, scene_texts(con, keys, targets))}
    stored = rows("c.duckdb", "SELECT scene_key, turn_count, learner_turns, memories_recalled <> [] FROM scenes")
    assert sorted((k, m.turns, m.learner_turns, m.recalls) for k, m in got.items()) == sorted(stored)
    assert len(got) == 10
    assert all(m.i_label_ok and m.first_person_narration and m.recall_related is not False for m in got.values())
    assert sum(m.over_limit_turns + m.empty_lines + m.meta_talk + m.name_in_narration + m.pronoun_mismatches
               for m in got.values()) == 0  # fmt: skip
    assert all(m.learner_grade is None or m.grade_in_band for m in got.values())


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

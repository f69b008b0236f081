"""Every prompt a model backend sends, in one place, and the one function that renders them.

A turn's prompt is two system blocks and one user message. The first block is stable for a speaker
within a scene (who they are, the scene, the stage's language targets) so the provider can cache it;
the second carries the learner's life (memories, values), which is fixed for the scene; the user
message is the scene so far and what to write now. The learner's lines are written in character, at
its stage, in the first person.
In script mode one call writes a whole scene: the first block holds the scene with every cast
member's card, the second the learner's life, and the user message the outline of every turn.

Invariant: `render` fails loudly (`PromptError`) when a template names a variable it was not given,
and templates never see an API key or anything outside the scene.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sim.backends.base import Line, Request
from sim.world.personas import Persona

TEMPLATES: dict[str, str] = {
    "speaker": (
        "You write one line at a time of a scripted scene for a training corpus in which a child grows up. "
        "The corpus is lived by one persistent \"I\", {learner_name}, who is {age} here; every scene is "
        "experience, told in the first person, with real people around me.\n\n"
        "You speak as {speaker_label} ({speaker_name}), {speaker_description}.\n{persona_card}\n\n"
        "The scene: \"{title}\". {place}, {time}. {situation}\n"
        "What the scene is for: {objective} Values at stake: {values}.\n"
        "Who is here, as I know them: {cast}.\n"
        "How the scene goes (beats): {beats}\n\n"
        "Language: I am in the stage \"{stage_label}\" (ages {stage_ages}). My own lines have at most "
        "{max_words} words; the text reads at grade {grade_low} to {grade_high}.\n\n"
        "Write only the words {speaker_label} says next: one line, no name or label in front, no quotation "
        "marks around it, no stage directions, never a word about being an AI or a model."
    ),
    "learner": (
        "You write one line at a time of a scripted scene for a training corpus in which a child grows up. "
        "The corpus is lived by one persistent \"I\": you speak as me, {learner_name}, aged {age}, in the "
        "stage \"{stage_label}\" (ages {stage_ages}). I am {learner_role} in this scene.\n{persona_card}\n\n"
        "The scene: \"{title}\". {place}, {time}. {situation}\n"
        "What the scene is for: {objective} Values at stake: {values}.\n"
        "Who is here, as I know them: {cast}.\n"
        "How the scene goes (beats): {beats}\n\n"
        "Language: my lines have at most {max_words} words and read at grade {grade_low} to {grade_high}: "
        "talk like a real {age}-year-old, in my own words.\n\n"
        "Write only the words I say next: one line, first person, no name or label in front, no quotation "
        "marks, no stage directions, never a word about being an AI or a model."
    ),
    "life": "My life so far. {memories}\nWhat I hold to: {held_values}.",
    "turn": (
        "The scene so far:\n{transcript}\n\nNow {speaker_label} speaks to {addressee_label}. This beat is for: "
        "{intent}. A line in this spirit (say it your own way): \"{example}\"\n"
        "Write {speaker_label}'s line now{limit}."
    ),
    "opening": (
        "Write the opening of this scene as I would tell it: first person, present tense, one to three "
        "sentences, starting the way this one does (say it your own way): \"{example}\"{memory}\n"
        "Write only the opening."
    ),
    "reflection": (
        "The scene as it happened:\n{transcript}\n\nWrite how I look back on it afterwards: first person, one to "
        "three sentences, in my words at {age}. In this spirit: \"{example}\"\nWrite only the reflection."
    ),
    "regenerate": (
        "Your last answer could not be used: {reason}. Answer again, following the instructions exactly."
    ),
    "script": (
        "You write whole scripted scenes for a training corpus in which a child grows up. The corpus is lived "
        "by one persistent \"I\", {learner_name}, who is {age} here, in the stage \"{stage_label}\" (ages "
        "{stage_ages}); every scene is experience, told in the first person, with real people around me. I am "
        "{learner_role} in this scene.\nMe:\n{learner_card}\n\n"
        "Who is here, as I know them:\n{cast_cards}\n\n"
        "The scene: \"{title}\". {place}, {time}. {situation}\n"
        "What the scene is for: {objective} Values at stake: {values}.\n"
        "How the scene goes (beats): {beats}\n\n"
        "Language: my own lines (speaker \"I\") have at most {max_words} words each and read at grade "
        "{grade_low} to {grade_high}: I talk like a real {age}-year-old, in my own words. Everyone else speaks "
        "in their own voice.\n\n"
        "Each text is only the words spoken: no name or label in front, no quotation marks around it, no stage "
        "directions, never a word about being an AI or a model. Answer with the JSON object asked for, nothing else."
    ),
    "script_outline": (
        "Write this scene as one JSON object with the keys opening, turns and reflection.\n\n"
        "opening: the start of the scene as I would tell it: first person, present tense, one to three sentences, "
        "starting the way this one does (say it your own way): \"{opening_example}\"{memory}\n\n"
        "turns: exactly {count}, in this order, each {{\"speaker\": the label exactly as given here, "
        "\"text\": the words they say}}:\n{outline}\n\n"
        "reflection: how I look back on the scene afterwards: first person, one to three sentences, in my words "
        "at {age}. In this spirit: \"{reflection_example}\""
    ),
    "script_turn": "{number}. speaker \"{speaker}\", to {addressee}: {intent}. In this spirit: \"{example}\"{limit}",
}


class PromptError(ValueError):
    """A template was rendered without a variable it names (a bug, not user input)."""


def render(name: str, variables: Mapping[str, object]) -> str:
    """Render template `name` with `variables`; every placeholder it names must be given.

    Raises:
        PromptError: the template does not exist, or names a variable that was not given.
    """
    if name not in TEMPLATES:
        raise PromptError(f"no prompt template {name!r} (templates: {', '.join(TEMPLATES)})")
    template = TEMPLATES[name]
    wanted = _placeholders(template)
    missing = sorted(wanted - variables.keys())
    if missing:
        raise PromptError(f"prompt {name!r} needs {', '.join(missing)}, which were not given")
    return template.format_map({key: variables[key] for key in wanted})


@functools.lru_cache(maxsize=64)
def _placeholders(template: str) -> frozenset[str]:
    """The variables `template` names (parsed once per template text)."""
    return frozenset(field for _, field, _, _ in string.Formatter().parse(template) if field)


def system_blocks(request: Request) -> tuple[str, str]:
    """The two system blocks of a call: the speaker's stable prefix, then the learner's life."""
    speaker = request.speaker or request.learner
    is_learner = speaker.id == request.learner.id
    return render("learner" if is_learner else "speaker", _scene_variables(request, speaker)), render(
        "life", _life_variables(request)
    )


def user_message(request: Request, example: str) -> str:
    """What to write now: the opening, the next turn, or the reflection."""
    transcript = _transcript(request.transcript)
    if request.kind == "opening":
        memory = f" You may recall: {request.memories[0].summary}." if request.memories else ""
        return render("opening", {"example": example, "memory": memory})
    if request.kind == "reflection":
        return render("reflection", {"transcript": transcript, "age": _age(request), "example": example})
    speaker, addressee = request.speaker or request.learner, request.addressee or request.learner
    is_learner = speaker.id == request.learner.id
    limit = f", at most {request.stage.language.max_words_per_turn} words" if is_learner else ""
    return render(
        "turn",
        {
            "transcript": transcript or "(nothing yet: this is the first line)",
            "speaker_label": "I" if is_learner else speaker.known_as,
            "addressee_label": "me" if addressee.id == request.learner.id else addressee.known_as,
            "intent": request.beat.intent if request.beat else "the scene",
            "example": example,
            "limit": limit,
        },
    )


def regenerate(reason: str) -> str:
    """The follow-up when a reply missed the targets."""
    return render("regenerate", {"reason": reason})


@dataclass(frozen=True)
class OutlineTurn:
    """One turn a script must write: who speaks (their label), to whom, what for, and an example line."""

    speaker: str
    addressee: str
    intent: str
    example: str
    max_words: int | None = None  # the learner's lines


def script_system_blocks(request: Request) -> tuple[str, str]:
    """The two system blocks of a script call: the scene with every cast member's card, then the learner's life."""
    variables = _scene_variables(request, request.learner)
    cast = [f"{p.known_as} ({p.name}), {_description(p)}.\n{_card(p)}" for p in request.cast.values()]
    variables.update(learner_card=_card(request.learner), cast_cards="\n\n".join(cast) or "Just me.")
    return render("script", variables), render("life", _life_variables(request))


def script_message(request: Request, opening: str, turns: Sequence[OutlineTurn], reflection: str) -> str:
    """The outline of a whole scene to write in one answer: the opening, every turn in order, the reflection."""
    outline = "\n".join(
        render(
            "script_turn",
            {
                "number": number,
                "speaker": turn.speaker,
                "addressee": turn.addressee,
                "intent": turn.intent,
                "example": turn.example,
                "limit": f" (at most {turn.max_words} words)" if turn.max_words is not None else "",
            },
        )
        for number, turn in enumerate(turns, start=1)
    )
    memory = f" You may recall: {request.memories[0].summary}." if request.memories else ""
    return render(
        "script_outline",
        {
            "opening_example": opening,
            "memory": memory,
            "count": f"{len(turns)} {'line' if len(turns) == 1 else 'lines'}",
            "outline": outline,
            "age": _age(request),
            "reflection_example": reflection,
        },
    )


def _scene_variables(request: Request, speaker: Persona) -> dict[str, object]:
    scene, stage = request.scene, request.stage
    return {
        "learner_name": request.learner.first_name,
        "age": _age(request),
        "speaker_label": speaker.known_as,
        "speaker_name": speaker.name,
        "speaker_description": _description(speaker),
        "persona_card": _card(speaker),
        "learner_role": scene.learner_role,
        "title": scene.title,
        "place": scene.setting.place,
        "time": scene.setting.time,
        "situation": scene.setting.situation,
        "objective": scene.objective,
        "values": ", ".join(scene.values),
        "cast": "; ".join(f"{p.known_as} ({p.role})" for p in request.cast.values()) or "just me",
        "beats": " / ".join(f"{b.speaker}: {b.intent}" for b in scene.beats),
        "stage_label": stage.label,
        "stage_ages": f"{stage.ages[0]}-{stage.ages[1]}",
        "max_words": stage.language.max_words_per_turn,
        "grade_low": stage.language.reading_grade[0],
        "grade_high": stage.language.reading_grade[1],
    }


def _life_variables(request: Request) -> dict[str, object]:
    memories = " ".join(f"At {m.age}: {m.summary} ({m.title}; I felt {m.felt}.)" for m in request.memories)
    held = ", ".join(sorted(request.life.values)) or "nothing named yet"
    return {"memories": memories or "Nothing yet that bears on this.", "held_values": held}


def _description(person: Persona) -> str:
    kin = f"my {person.kinship}" if person.kinship else f"a {person.role}"
    return f"{kin}, {person.pronouns}"


def _card(person: Persona) -> str:
    t, v = person.traits, person.voice
    lines = [
        f"Traits (0-1): openness {t.openness}, conscientiousness {t.conscientiousness}, extraversion "
        f"{t.extraversion}, agreeableness {t.agreeableness}, neuroticism {t.neuroticism}.",
        f"Voice: {v.tone}, {v.vocabulary} vocabulary."
        + (f" Says things like: {'; '.join(v.catchphrases)}." if v.catchphrases else "")
        + (f" Calls me {' or '.join(v.calls_learner)}." if v.calls_learner else ""),
    ]
    if person.values:
        lines.append(f"Cares about: {', '.join(person.values)}.")
    if person.backstory:
        lines.append(f"Backstory: {person.backstory.strip()}")
    return "\n".join(lines)


def _transcript(lines: Sequence[Line]) -> str:
    return "\n".join(f"{line.speaker}: {line.text}" for line in lines)


def _age(request: Request) -> int:
    return request.life.age if request.life.age is not None else request.stage.typical_age

"""The offline `scripted` backend: realises beats from the scene's line variants, fully deterministic.

It picks a line variant per exchange, fills placeholders with the cast, the setting, the learner's
age and Faker details (one set per scene variation, so a scene reads consistently within itself and
differently across variations), adds the speaker's catchphrases and the learner's memories, and keeps
the learner's lines within the stage's word limit. No key, no network.

Invariant: the text depends only on (request, seed).
"""

from __future__ import annotations

import functools
import random

from sim.backends.base import Request, Utterance
from sim.world.personas import Persona
from sim.world.placeholders import fill, in_words

FOODS = (
    "pancakes",
    "apple pie",
    "rice and beans",
    "soup",
    "strawberries",
    "noodles",
    "toast",
    "dumplings",
    "banana bread",
    "plum cake",
    "tomato salad",
    "fish stew",
    "corn on the cob",
    "lentil soup",
)
ANIMALS = ("dog", "cat", "rabbit", "hedgehog", "sparrow", "goat", "duck", "squirrel", "tortoise", "fox")
CATCHPHRASE_RATE = 0.25
CALLBACK_RATE = 0.35


class ScriptedBackend:
    """Deterministic, offline realisation of scripted scenes."""

    name = "scripted"
    model = "scripted-1"
    concurrent = False

    def __init__(self) -> None:
        self._details: dict[str, dict[str, str]] = {}

    def speak(self, request: Request, *, seed: int) -> Utterance:
        """Realise an opening, a turn or a reflection."""
        rng = random.Random(f"{seed}:{request.scene_key}:{request.kind}:{request.turn}")
        if request.kind == "opening":
            return Utterance(self._opening(request, seed))
        if request.kind == "reflection":
            return Utterance(self._reflection(request, seed, rng))
        return self._turn(request, seed, rng)

    async def aspeak(self, request: Request, *, seed: int) -> Utterance:
        """The same as `speak`: nothing to wait for."""
        return self.speak(request, seed=seed)

    async def aclose(self) -> None:
        """Nothing to close."""

    def close(self) -> None:
        """Nothing to close."""

    def _values(self, request: Request, seed: int) -> dict[str, str]:
        key = f"{seed}:{request.scene_key}"
        if key not in self._details:
            if len(self._details) > 256:
                self._details.clear()
            self._details[key] = _scene_values(request, seed)
        return self._details[key]

    def _opening(self, request: Request, seed: int) -> str:
        text = fill(request.scene.opening, self._values(request, seed))
        if request.memories:
            text += f" I remember when {sentence(request.memories[0].summary)}"
        return text

    def _reflection(self, request: Request, seed: int, rng: random.Random) -> str:
        template = request.scene.reflection or f"Afterwards I kept thinking about {request.scene.title.lower()}."
        text = fill(template, self._values(request, seed))
        older = [m for m in request.memories if m.stage_rank < request.stage_rank]
        if older and rng.random() < 0.8:
            text += f" It made me think of the time {older[0].summary} I was {in_words(older[0].age)} then."
        return text

    def _turn(self, request: Request, seed: int, rng: random.Random) -> Utterance:
        if request.beat is None or request.speaker is None:
            raise ValueError("a turn request needs a beat and a speaker")
        values = dict(self._values(request, seed))
        values["speaker"] = request.speaker.known_as
        values["learner"] = _address_learner(request.speaker, request.learner, rng)
        variants = list(request.beat.lines)
        random.Random(f"{seed}:{request.scene_key}:beat{request.beat_index}").shuffle(variants)
        is_learner = request.speaker.role == "learner"
        if not is_learner:
            text = fill(variants[request.exchange % len(variants)], values)
            return Utterance(_with_catchphrase(text, request.speaker, rng))
        return _fit_learner_line(variants, request, values, rng)


def _scene_values(request: Request, seed: int) -> dict[str, str]:
    rng = random.Random(f"details:{seed}:{request.scene_key}")
    pools = _pools()
    setting = request.scene.setting
    values = {
        "learner_name": request.learner.first_name,
        "age": in_words(request.life.age if request.life.age is not None else request.stage.typical_age),
        "place": setting.place,
        "time": setting.time,
        "situation": setting.situation,
        "memory": request.memories[0].summary if request.memories else "the first time I tried",
        "food": rng.choice(FOODS),
        "animal": rng.choice(ANIMALS),
        "number": in_words(rng.randint(2, 12)),
        **{name: rng.choice(pool) for name, pool in pools.items()},
    }
    values.update({slot: person.known_as for slot, person in request.cast.items()})
    return values


@functools.cache
def _pools() -> dict[str, tuple[str, ...]]:
    """Everyday details drawn once per process from a fixed-seed Faker, then picked with the scene's rng.

    Drawing from fixed pools keeps the text deterministic and costs microseconds per scene instead of
    reseeding Faker for every scene.
    """
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(20250622)
    size = 400
    return {
        "city": tuple(sorted({fake.city() for _ in range(size)})),
        "street": tuple(sorted({fake.street_name() for _ in range(size)})),
        "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "month": tuple(sorted({fake.month_name() for _ in range(100)})),
        "color": tuple(sorted({fake.safe_color_name() for _ in range(200)})),
        "name": tuple(sorted({fake.first_name() for _ in range(size)})),
        "job": tuple(sorted({fake.job().lower() for _ in range(size)})),
    }


def sentence(text: str) -> str:
    """End a sentence with a full stop unless it already ends with punctuation."""
    return text if text.rstrip("\u201d\"'")[-1:] in ".!?" else f"{text}."


def _address_learner(speaker: Persona, learner: Persona, rng: random.Random) -> str:
    names = speaker.voice.calls_learner
    if names and rng.random() < 0.6:
        return rng.choice(names)
    return learner.first_name


def _with_catchphrase(text: str, speaker: Persona, rng: random.Random) -> str:
    phrases = speaker.voice.catchphrases
    if phrases and rng.random() < CATCHPHRASE_RATE:
        phrase = rng.choice(phrases).strip()
        return f"{phrase} {text}" if phrase[-1:] in ".!?" else f"{phrase}, {text[:1].lower()}{text[1:]}"
    return text


def _fit_learner_line(variants: list[str], request: Request, values: dict[str, str], rng: random.Random) -> Utterance:
    """Keep the learner's line within the stage's word limit: prefer a variant that fits, else shorten."""
    limit = request.stage.language.max_words_per_turn
    start = request.exchange % len(variants)
    for text in (fill(v, values) for v in variants[start:] + variants[:start]):
        if len(text.split()) <= limit:
            return Utterance(_with_callback(text, request, limit, rng))
    words = fill(variants[start], values).split()[:limit]
    return Utterance(" ".join(words).rstrip(",;:") + ("" if words[-1][-1:] in ".!?" else "."), repairs=1)


def _with_callback(text: str, request: Request, limit: int, rng: random.Random) -> str:
    """Sometimes the learner brings up an earlier scene ("Like Grandpa said.")."""
    if not request.memories or request.stage_rank == 0 or rng.random() >= CALLBACK_RATE:
        return text
    memory = request.memories[0]
    present = {p.id for p in request.cast.values()}
    who = next((n for p, n in zip(memory.people, memory.names, strict=True) if p not in present), None)
    addition = f"Like {who} said." if who else "Like last time."
    if len(text.split()) + len(addition.split()) > limit:
        return text
    return f"{text} {addition}"

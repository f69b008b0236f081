"""A small valid world written into the test's working directory, so a test can break exactly one thing.

The world: learner `sam`; family `mum` (mother) and `grandpa` (grandfather); teacher `ms-lee`; peer `mia`;
and one pack `first-steps` with two scenes (`sharing-toys` at toddler, `kind-words` at early_childhood,
which follows the first). Every text is a module constant, so a test can `.replace()` one detail and
know the line it lands on.
"""

from __future__ import annotations

from pathlib import Path

SAM = """\
name: Sam Adeyemi
role: learner
pronouns: they/them
traits:
  openness: 0.7
voice:
  register: curious
"""

MUM = """\
name: Amara Adeyemi
address_as: Mum
role: family
kinship: mother
pronouns: she/her
age: learner+31
values: [honesty, kindness]
relationships:
  - {to: sam, kind: parent_of, closeness: 0.9}
  - {to: grandpa, kind: child_of, closeness: 0.8}
"""

GRANDPA = """\
name: Walter Brook
address_as: Grandpa
role: family
kinship: grandfather
pronouns: he/him
age: learner+62
traits:
  agreeableness: 0.8
relationships:
  - to: sam
    kind: grandparent_of
    closeness: 0.85
"""

MS_LEE = """\
name: Hannah Lee
address_as: Ms. Lee
role: teacher
pronouns: she/her
age: 41
stages: [early_childhood]
relationships:
  - {to: sam, kind: teacher_of, closeness: 0.6}
"""

MIA = """\
name: Mia Torres
address_as: Mia
role: peer
pronouns: she/her
age: learner
relationships:
  - {to: sam, kind: classmate_of, closeness: 0.7}
  - {to: sam, kind: friend_of, closeness: 0.9}
"""

PERSONAS: dict[str, str] = {"sam": SAM, "mum": MUM, "grandpa": GRANDPA, "ms-lee": MS_LEE, "mia": MIA}

PACK_ID = "first-steps"
# Line numbers matter: tests assert them. Scene 0 starts on line 6, scene 1 on line 30.
PACK = """\
title: First steps
description: Two small scenes for tests.
version: 1.0.0
scenes:
  - id: sharing-toys
    title: Sharing the blocks
    stage: toddler
    values: [sharing]
    setting: {place: the cottage, time: a rainy morning, situation: two children and one box of blocks}
    learner_role: grandchild
    cast:
      - {slot: grandpa, role: family, relation: grandparent_of}
    objective: I learn to share the blocks.
    opening: I am {age}. Today {grandpa} and I are in {place}.
    beats:
      - speaker: grandpa
        intent: ask the learner to share
        lines:
          - "Can you share, {learner}?"
          - "{learner}, one block for me?"
      - speaker: learner
        intent: share
        lines:
          - "Share, {speaker}!"
          - "Here, {speaker}."
    reflection: That night I thought about what {grandpa} said.
  - id: kind-words
    title: Kind words at school
    stage: early_childhood
    values: [kindness, respect]
    setting: {place: the classroom, time: after lunch, situation: a friend is crying}
    learner_role: student
    cast:
      - {slot: teacher, role: teacher, relation: teacher_of}
      - {slot: friend, role: peer, relation: classmate_of}
    objective: I learn to comfort a friend.
    opening: I am {age}. {friend} is sad in {place}.
    beats:
      - speaker: teacher
        intent: notice the sad friend
        lines:
          - "{learner}, can you help {friend}?"
          - "Look, {learner}. {friend} needs a friend."
      - speaker: learner
        intent: comfort
        to: friend
        lines:
          - "Are you okay, {friend}?"
          - "Do you want a hug?"
    follows: [sharing-toys]
"""


def write(relpath: str, text: str | bytes) -> Path:
    """Write one file below the working directory (creating its folders) and return its path."""
    path = Path(relpath)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_persona(person_id: str, text: str) -> Path:
    """Write `personas/<id>.yaml`."""
    return write(f"personas/{person_id}.yaml", text)


def write_pack(text: str = PACK, pack_id: str = PACK_ID) -> Path:
    """Write `scenarios/<pack>/pack.yaml`."""
    return write(f"scenarios/{pack_id}/pack.yaml", text)


def write_world(*, personas: dict[str, str | None] | None = None, pack: str | None = PACK) -> Path:
    """Write the small valid world into the working directory.

    `personas` overrides persona texts by id (None leaves that person out); `pack=None` writes no pack.
    """
    texts = {**PERSONAS, **(personas or {})}
    for person_id, text in texts.items():
        if text is not None:
            write_persona(person_id, text)
    Path("scenarios").mkdir(exist_ok=True)
    if pack is not None:
        write_pack(pack)
    return Path.cwd()


def replace_once(text: str, old: str, new: str) -> str:
    """`text` with the single occurrence of `old` replaced; fails loudly if `old` is absent or repeated."""
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"{old!r} occurs {count} times in the fixture text (expected exactly once)")
    return text.replace(old, new)

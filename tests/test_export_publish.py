"""`sim export` and the files around it: what it may replace, faults of the output's file system, and kills
while it publishes. Each test looks at the output directory as a consumer of the export would.

Disk-full and read-only cases use a real tmpfs (mounting needs root: CI runs the suite as root); the
permission case drops root's override of file permissions with `setpriv`; kills are a SIGKILL the
`sim export` process sends itself just before a chosen step.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import REPO, ok, run_cli, sim_export

MARKER = "<!-- written by `sim export` (raising-sim): the next export into this directory replaces this file -->"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two packs lived twice: 40 records (read-only from here on)."""
    root = tmp_path_factory.mktemp("corpus")
    db = root / "corpus.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name in [n for n in os.environ if n.startswith("SIM_")]:
            mp.delenv(name)
        result = run_cli(
            "run", str(REPO / "scenarios/first-steps"), str(REPO / "scenarios/school-days"), "--db", str(db),
            "--variations", "2", "--personas", str(REPO / "personas"), "--scenarios", str(REPO / "scenarios"),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    return db


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` (hidden ones too) and its SHA-256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- item 4: an export replaces only what an export wrote ----------------------------------------------------------


def test_the_card_carries_the_marker_right_after_the_hub_metadata(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "pq", "--format", "parquet"))
    ok(sim_export(corpus, "--out", "tx", "--format", "txt"))
    assert Path("pq/README.md").read_text().split("---\n")[2].startswith(f"{MARKER}\n\n# raising-sim training")
    assert Path("tx/README.md").read_text().startswith(f"{MARKER}\n\n# raising-sim training")


@pytest.mark.parametrize("overwrite", [(), ("--overwrite",)], ids=["plain", "overwrite"])
@pytest.mark.parametrize(
    ("mine", "said"),
    [
        (["README.md"], "out/README.md was not written by sim export (it lacks the marker line of an export's "
                        "dataset card), and an export never replaces a file it did not write, with --overwrite or "
                        "not; move it elsewhere"),
        (["export.json"], 'out/export.json was not written by sim export (it is not a manifest of "kind": '
                          '"raising-sim export"), and an export never replaces a file it did not write, with '
                          "--overwrite or not; move it elsewhere"),
        (["README.md", "export.json"], "out/README.md (it lacks the marker line of an export's dataset card) and "
                                       'out/export.json (it is not a manifest of "kind": "raising-sim export") were '
                                       "not written by sim export, and an export never replaces a file it did not "
                                       "write, with --overwrite or not; move them elsewhere"),
    ],
    ids=["readme", "manifest", "both"],
)  # fmt: skip
def test_a_readme_or_manifest_of_the_users_stops_the_export(
    corpus: Path, mine: list[str], said: str, overwrite: tuple[str, ...]
) -> None:
    Path("out").mkdir()
    for name in mine:
        Path("out", name).write_text(f"my own {name}\n")
    result = sim_export(corpus, "--out", "out", "--format", "parquet", *overwrite)
    assert (result.exit_code, result.stderr) == (
        2, f"error: refusing to export into out: {said}, or choose another --out\n"
    )  # fmt: skip
    assert tree(Path("out")) == {n: hashlib.sha256(f"my own {n}\n".encode()).hexdigest() for n in mine}


def test_a_users_readme_in_place_of_the_card_stops_even_an_overwrite(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "10"))
    Path("out/README.md").write_text("# my dataset\n\nnotes I wrote over the card\n")
    before = tree(Path("out"))
    result = sim_export(corpus, "--out", "out", "--format", "jsonl", "--overwrite")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: refusing to export into out: out/README.md was not written by sim export")
    assert tree(Path("out")) == before
    Path("out/README.md").unlink()  # once it is moved away, the export replaces its own files
    ok(sim_export(corpus, "--out", "out", "--format", "jsonl", "--overwrite"))
    assert sorted(os.listdir("out")) == ["README.md", "export.json", "train-00000-of-00001.jsonl"]


def test_a_users_file_under_a_shard_name_is_never_replaced(corpus: Path) -> None:
    ok(sim_export(corpus, "--out", "out", "--format", "parquet", "--shard-size", "10"))
    Path("out/train-00000-of-00001.parquet").write_bytes(b"mine, not listed in export.json")
    before = tree(Path("out"))
    result = sim_export(corpus, "--out", "out", "--format", "parquet", "--overwrite")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: refusing to export into out: out/train-00000-of-00001.parquet was not written by sim export (no "
        "manifest of an export lists it), and an export never replaces a file it did not write, with --overwrite "
        "or not; move it elsewhere, or choose another --out\n",
    )
    assert tree(Path("out")) == before


# --- item 5: faults of the output's file system are one line ---------------------------------------------------------


def test_an_out_below_a_file_is_one_line(corpus: Path) -> None:
    Path("somefile").write_text("mine")
    result = sim_export(corpus, "--out", "somefile/sub", "--format", "parquet")
    assert (result.exit_code, result.stderr) == (
        2, "error: --out somefile/sub: somefile is a file, not a directory; choose another --out\n"
    )  # fmt: skip
    assert Path("somefile").read_text() == "mine"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a small tmpfs (`mount -o OPTIONS`) in the test's directory; always unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        where = Path(f"mnt{len(mounted)}")  # in the test's working directory, so messages show it relative
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in reversed(mounted):
            if subprocess.run(["umount", str(where.resolve())], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(where.resolve())], capture_output=True)


def test_a_full_disk_is_one_line_and_keeps_the_previous_export(corpus: Path, tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("size=96k")
    out = disk / "out"
    ok(sim_export(corpus, "--out", str(out), "--format", "jsonl", "--stage", "toddler"))  # small: it fits
    before, free = tree(disk), shutil.disk_usage(disk).free
    result = sim_export(corpus, "--out", str(out), "--format", "jsonl", "--overwrite")  # the whole corpus does not
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: cannot export to {out}: no space left on the device; free some space there, or choose another "
        "--out. Nothing in --out was changed\n",
    )
    assert tree(disk) == before
    assert sorted(os.listdir(out)) == ["README.md", "export.json", "train-00000-of-00001.jsonl"]
    assert shutil.disk_usage(disk).free == free  # the scratch files are gone too
    result = sim_export(corpus, "--out", str(disk / "fresh"), "--format", "parquet", "--shard-size", "5")
    assert (result.exit_code, "Traceback" in result.output) == (1, False)
    assert result.stderr.startswith(f"error: cannot export to {disk / 'fresh'}: no space left on the device; ")
    assert tree(disk) == before and not (disk / "fresh").exists()


def test_a_read_only_file_system_is_one_line(corpus: Path, tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("size=1m")
    out = disk / "out"
    ok(sim_export(corpus, "--out", str(out), "--format", "parquet"))
    before = tree(disk)
    assert subprocess.run(["mount", "-o", "remount,ro", str(disk)]).returncode == 0
    for where in (out, disk / "new"):
        result = sim_export(corpus, "--out", str(where), "--format", "jsonl", "--overwrite")
        scratch = f"{where}/.sim-export-tmp" if where == out else str(where)
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: cannot export to {where}: read-only file system at {scratch}; choose another --out, or mount "
            "it read-write. Nothing in --out was changed\n",
        )
    assert tree(disk) == before


def test_no_permission_to_write_is_one_line(corpus: Path) -> None:
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("as root, permission bits are enforced only without CAP_DAC_OVERRIDE, dropped with setpriv")
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    Path("locked").mkdir()
    ok(sim_export(corpus, "--out", "locked/out", "--format", "txt"))
    before = tree(Path("locked"))
    Path("locked/out").chmod(0o555)
    try:
        for out in ("locked/out", "locked/out/new"):
            done = subprocess.run(
                [*drop, sys.executable, "-m", "sim", "export", "--db", str(corpus), "--out", out, "--format", "txt",
                 "--overwrite"], capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            denied = "locked/out/.sim-export-tmp" if out == "locked/out" else out
            assert (done.returncode, done.stderr) == (
                1,
                f"error: cannot export to {out}: permission denied at {denied}; choose another --out, or get write "
                "permission there. Nothing in --out was changed\n",
            )
    finally:
        Path("locked/out").chmod(0o755)
    assert tree(Path("locked")) == before


# --- item 8: a kill while publishing -------------------------------------------------------------------------------

# Run `sim ARGS...` and SIGKILL it just before the AT-th call of MODULE.NAME (a step of the export).
KILL_BEFORE = """\
import importlib, os, signal, sys
module, name, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
target = importlib.import_module(module)
real, calls = getattr(target, name), []
def step(*args, **kwargs):
    calls.append(1)
    if len(calls) == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(target, name, step)
sys.argv = ["sim", *sys.argv[4:]]
from sim.cli import main
main()
"""
OLD = ("--format", "parquet", "--shard-size", "10")  # 4 shards
NEW = ("--format", "parquet", "--shard-size", "15", "--overwrite")  # 3 shards
# The steps of publishing the new export: remove the old manifest, card and 4 shards, rename 3 shards, the card,
# and last the manifest.
KILLS = {
    "while writing a shard": ("sim.corpus.export.shards", "write", 2),
    "before withdrawing the old export": ("sim.corpus.export.publish", "_remove", 1),
    "after withdrawing the old manifest": ("sim.corpus.export.publish", "_remove", 2),
    "before renaming any shard": ("sim.corpus.export.publish", "_rename", 1),
    "after renaming one shard": ("sim.corpus.export.publish", "_rename", 2),
    "before renaming the card": ("sim.corpus.export.publish", "_rename", 4),
    "before renaming the manifest": ("sim.corpus.export.publish", "_rename", 5),
}


def consumer_view(out: Path) -> tuple[dict[str, str], dict[str, str]]:
    """What a consumer sees (files not hidden), after checking that a manifest or card lists only files in place.

    Returns the shards the manifest lists with their SHA-256 (empty without a manifest), and every shard present.
    """
    present = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("train-*")}
    listed: dict[str, str] = {}
    if (out / "export.json").exists():
        listed = {f["name"]: f["sha256"] for f in json.loads((out / "export.json").read_text())["files"]}
        assert {n: present.get(n) for n in listed} == listed, "the manifest lists a shard not in place"
        assert (out / "README.md").exists(), "a manifest without its card"
    if (out / "README.md").exists():
        card = (out / "README.md").read_text()
        assert MARKER in card
        in_card = set(re.findall(r"^\| `(train-[^`]+)` \|", card, re.M))
        assert in_card <= set(present), "the card lists a shard not in place"
        assert not listed or in_card == set(listed), "the card and the manifest disagree"
    return listed, present


@pytest.mark.parametrize("kill", list(KILLS))
def test_a_kill_while_publishing_never_shows_a_manifest_of_missing_shards_and_the_next_run_finishes(
    corpus: Path, kill: str
) -> None:
    ok(sim_export(corpus, "--out", "ref", *NEW))
    reference = tree(Path("ref"))
    ok(sim_export(corpus, "--out", "out", *OLD))
    Path("out/notes.txt").write_text("mine")
    old = tree(Path("out"))
    done = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE, *map(str, KILLS[kill]), "export", "--db", str(corpus), "--out", "out",
         *NEW], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    listed, present = consumer_view(Path("out"))
    assert Path("out/notes.txt").read_text() == "mine"
    shards = {n: h for n, h in {**old, **reference}.items() if n.startswith("train-")}
    assert all(shards.get(n) == h for n, h in present.items()), "a half-written or foreign shard under a final name"
    if kill in ("while writing a shard", "before withdrawing the old export"):
        assert {k: v for k, v in tree(Path("out")).items() if not k.startswith(".")} == old  # as it was
    else:
        assert not listed  # the old export is withdrawn, the new one not yet in place: no manifest claims either
    ok(sim_export(corpus, "--out", "out", *NEW))
    finished = tree(Path("out"))
    assert finished.pop("notes.txt") == old["notes.txt"]
    assert finished.pop("README.md") and reference.pop("README.md")
    assert finished == reference  # the shards and the manifest, byte for byte; nothing else, nothing hidden
    assert Path("out/README.md").read_text() == Path("ref/README.md").read_text().replace("ref/", "out/")


def test_a_fault_while_publishing_says_the_export_is_unfinished_and_the_next_run_finishes(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sim.corpus.export import publish

    ok(sim_export(corpus, "--out", "ref", *NEW))
    ok(sim_export(corpus, "--out", "out", *OLD))
    real, calls = publish._rename, []

    def failing(source: Path, destination: Path) -> None:
        calls.append(destination)
        if len(calls) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(destination))
        real(source, destination)

    monkeypatch.setattr(publish, "_rename", failing)
    result = sim_export(corpus, "--out", "out", *NEW)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: cannot export to out: input/output error at out/train-00001-of-00003.parquet; check the disk and "
        "the path, or choose another --out. out holds an unfinished export (no export.json): run the same command "
        "again once this is fixed\n",
    )
    listed, present = consumer_view(Path("out"))
    assert not listed and sorted(present) == ["train-00000-of-00003.parquet"]
    monkeypatch.setattr(publish, "_rename", real)
    ok(sim_export(corpus, "--out", "out", *NEW))
    assert {k: v for k, v in tree(Path("out")).items() if k != "README.md"} == {
        k: v for k, v in tree(Path("ref")).items() if k != "README.md"
    }

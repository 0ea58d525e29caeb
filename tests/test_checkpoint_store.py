"""The checkpoint store and the master's side of checkpoints, in-process (no MPI).

CheckpointStore: atomic saves, sequence numbers, keep-K pruning, corrupt
checkpoints skipped in favour of the previous one, input fingerprints, epochs,
the shared store of processed files (links, copies, hostile names) and the cost
of one save. FileTracker and restore: when a file counts as processed, and what
a resume takes from a checkpoint when inputs changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from loganalyser.counting.reader import analyse_pieces
from loganalyser.counting.result import PartialResult
from loganalyser.persistence import store as checkpoint_module
from loganalyser.persistence.policy import Checkpointer, CheckpointPolicy, FileTracker, restore
from loganalyser.persistence.store import (
    JOBS,
    SCHEMA,
    STORE,
    CheckpointStore,
    CheckpointWriteError,
    StaleEpoch,
    checksum,
    encode,
    stored_name,
)
from loganalyser.work.inputs import LogFile, find_log_files, input_fingerprint
from loganalyser.work.jobstate import JobState
from loganalyser.work.tasks import plan_tasks

FP = "0123456789abcdef"  # an input fingerprint


# --- helpers -----------------------------------------------------------------


class Warnings(list):
    """Collects the store's warnings (truthy even when empty: the store replaces a falsy `warn`)."""

    def __call__(self, text: str) -> None:
        self.append(text)

    def __bool__(self) -> bool:
        return True

    def naming(self, folder: str) -> list[str]:
        return [w for w in self if os.path.basename(folder) in w]


def make_doc(i: int, fingerprint: str = FP, epoch: int = 1) -> dict:
    """A checkpoint document whose content is derived from `i` (so each is recognisable)."""
    return {
        "schema": SCHEMA,
        "fingerprint": fingerprint,
        "epoch": epoch,
        "plan": {"chunk_bytes": 1 << 20, "batch_bytes": 1 << 20, "batch_files": 512},
        "counts": {"ERROR": 1000 + i, "INFO": 123456 + 7 * i},
        "lines": 124456 + 8 * i,
        "malformed": i,
        "blank": 0,
        "bytes": 9_000_000 + i,
        "files": i,
        "processed_files": [f"logs/f{k}.log" for k in range(i)],
        "pending_files": [f"logs/f{k}.log" for k in range(i, i + 3)],
        "failed_workers": [],
        "tasks": {f"task{k:04d}": {"counts": {"INFO": k}, "lines": k, "malformed": 0, "blank": 0, "bytes": k, "files": 1}
                  for k in range(i)},
    }


def save(store: CheckpointStore, doc: dict, files=()) -> str:
    """store.save with the identities of `files` (the job's input description)."""
    return store.save(doc, list(files), {f.path: f.identity for f in files})


def on_disk(root, sequence: int) -> dict:
    """A checkpoint's document as written (without the identities a load attaches from its job file)."""
    return json.load(open(checkpoint_json(root, sequence)))


def loaded(checkpoint) -> dict:
    return {k: v for k, v in checkpoint.doc.items() if k != "identities"}


def stored_path(root, f: LogFile) -> str:
    return os.path.join(root, STORE, stored_name(f.path, f.identity))


def write_logs(folder, names_and_data) -> list[LogFile]:
    """Writes files into `folder` and returns their LogFiles (in the given order)."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for name, data in names_and_data:
        path = os.path.join(os.fsdecode(folder), name) if isinstance(name, str) else os.fsdecode(os.path.join(os.fsencode(folder), name))
        with open(path, "wb") as f:
            f.write(data)
        st = os.stat(path)
        out.append(LogFile(path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
    return out


def log_file(path) -> LogFile:
    st = os.stat(path)
    return LogFile(os.fsdecode(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def entries(root) -> set[tuple[str, int]]:
    """Every path under `root` (files, folders, links) with its inode: what a save created."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            found.add((path, os.lstat(path).st_ino))
    return found


def checkpoint_json(root, sequence: int) -> str:
    return os.path.join(root, f"{sequence:06d}", "checkpoint.json")


# --- save and load -----------------------------------------------------------


def test_round_trip(tmp_path):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n"), ("b.log", b"[t] [WARN] y\n" * 3)])
    store = CheckpointStore(root)
    folder = save(store, make_doc(5), logs)
    assert folder == os.path.join(root, "000001")

    got = CheckpointStore(root).load_latest(FP)
    assert got is not None and got.sequence == 1 and got.folder == folder
    for key, value in make_doc(5).items():
        assert got.doc[key] == value, key
    assert got.doc["sequence"] == 1
    assert got.doc["checksum"] == checksum(on_disk(root, 1))
    assert got.doc["identities"] == {f.path: f.identity for f in logs}  # from the job file it names
    assert re.fullmatch(rf"{JOBS}/[0-9a-f]{{64}}\.json", got.doc["job_file"])
    # The checkpoint's files/ leads to the stored copies of exactly those files.
    for f in logs:
        stored = os.path.join(folder, STORE, stored_name(f.path, f.identity))
        assert open(stored, "rb").read() == open(f.path, "rb").read()


def test_encoding_is_canonical_json_with_its_checksum():
    doc = make_doc(3)
    data = encode(doc)
    back = json.loads(data)
    assert back["checksum"] == checksum(back) == checksum(doc)
    assert {k: v for k, v in back.items() if k != "checksum"} == doc
    assert encode(back) == data  # the same bytes whatever the key order it was built in


def test_empty_or_missing_folder_has_no_checkpoint(tmp_path):
    warnings = Warnings()
    assert CheckpointStore(str(tmp_path / "nothing"), warn=warnings).load_latest(FP) is None
    (tmp_path / "empty").mkdir()
    assert CheckpointStore(str(tmp_path / "empty"), warn=warnings).load_latest(FP) is None
    assert len(warnings) == 0


def test_sequence_numbers_and_zero_padded_names(tmp_path):
    root = str(tmp_path / "ck")
    store = CheckpointStore(root, keep=100)
    folders = [save(store, make_doc(i)) for i in range(1, 12)]
    assert [os.path.basename(f) for f in folders] == [f"{i:06d}" for i in range(1, 12)]
    assert store.sequences() == list(range(1, 12))
    # Numeric, not lexical, order: 000010 and 000011 are newer than 000009.
    latest = CheckpointStore(root).load_latest(FP)
    assert latest.sequence == 11 and latest.doc["files"] == 11
    # A new store (a new run) continues the numbering.
    assert os.path.basename(save(CheckpointStore(root, keep=100), make_doc(12))) == "000012"


def test_numbering_goes_past_six_digits(tmp_path):
    root = str(tmp_path / "ck")
    store = CheckpointStore(root, keep=100)
    save(store, make_doc(1))
    os.rename(os.path.join(root, "000001"), os.path.join(root, "999999"))
    assert os.path.basename(save(store, make_doc(2))) == "1000000"
    assert CheckpointStore(root).load_latest(FP).doc["files"] == 2  # 1000000 > 999999 though "1" < "9"


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_keeps_the_newest_k(tmp_path, keep):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [(f"f{i}.log", b"[t] [INFO] x\n" * (i + 1)) for i in range(6)])
    store = CheckpointStore(root, keep=keep)
    for i in range(1, 7):
        save(store, make_doc(i), logs[:i])
        assert store.sequences() == list(range(max(1, i - keep + 1), i + 1))
    assert sorted(n for n in os.listdir(root) if n not in (STORE, JOBS)) == [f"{s:06d}" for s in range(7 - keep, 7)]
    # The kept checkpoints still reach every file they name.
    for sequence in store.sequences():
        got = CheckpointStore(root)._read(sequence)
        assert set(got.doc["identities"]) == {f.path for f in logs[:sequence]}
        for f in logs[:sequence]:
            assert os.path.isfile(os.path.join(root, f"{sequence:06d}", STORE, stored_name(f.path, f.identity)))


# --- corrupt checkpoints -----------------------------------------------------


def _truncate(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _garbage(path):
    size = os.path.getsize(path)
    open(path, "wb").write(bytes((i * 37 + 11) % 256 for i in range(size)))


def _flip_count_digit(path):
    text = open(path).read()
    match = re.search(r'"INFO": (\d+)', text)  # the totals' INFO count (the first one in the document)
    digit = match.group(1)[-1]
    flipped = str((int(digit) + 1) % 10)
    open(path, "w").write(text[: match.end() - 1] + flipped + text[match.end():])
    assert json.load(open(path))["counts"]["INFO"] != json.loads(text)["counts"]["INFO"]


def _remove(path):
    os.unlink(path)


def _empty(path):
    open(path, "wb").close()


def _not_an_object(path):
    open(path, "w").write("[1, 2, 3]\n")


def _missing_field(path):
    doc = json.load(open(path))
    del doc["tasks"]
    doc["checksum"] = checksum(doc)  # consistent, but not a checkpoint
    open(path, "w").write(json.dumps(doc))


def _other_schema(path):
    doc = json.load(open(path))
    doc["schema"] = SCHEMA + 1
    doc["checksum"] = checksum(doc)
    open(path, "w").write(json.dumps(doc))


def _job_file_gone(path):
    doc = json.load(open(path))
    os.unlink(os.path.join(os.path.dirname(os.path.dirname(path)), doc["job_file"]))


def _job_file_edited(path):
    doc = json.load(open(path))
    job = os.path.join(os.path.dirname(os.path.dirname(path)), doc["job_file"])
    data = open(job).read()
    open(job, "w").write(data.replace(":", ";", 1))


def _job_file_outside(path):
    """A consistent document whose job file name climbs out of the checkpoint folder."""
    doc = json.load(open(path))
    doc["job_file"] = "jobs/../../../../etc/passwd"
    doc["checksum"] = checksum(doc)
    open(path, "w").write(json.dumps(doc))


CORRUPTIONS = [_truncate, _garbage, _flip_count_digit, _remove, _empty, _not_an_object, _missing_field, _other_schema]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_corrupt_newest_falls_back_to_the_previous_one(tmp_path, corrupt):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n")])
    store = CheckpointStore(root, keep=5)
    for i in range(1, 4):
        save(store, make_doc(i), logs)
    previous = on_disk(root, 2)
    corrupt(checkpoint_json(root, 3))

    warnings = Warnings()
    got = CheckpointStore(root, warn=warnings).load_latest(FP)
    assert got is not None and got.sequence == 2
    assert loaded(got) == previous
    assert len(warnings) == 1 and warnings.naming("000003"), warnings


@pytest.mark.parametrize("corrupt", [_job_file_gone, _job_file_edited, _job_file_outside], ids=["gone", "edited", "outside"])
def test_checkpoint_with_a_bad_job_file_is_skipped(tmp_path, corrupt):
    root = str(tmp_path / "ck")
    old = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n")])
    store = CheckpointStore(root, keep=5)
    save(store, make_doc(1), old)
    new = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n[t] [INFO] y\n")])  # another identity: another job file
    save(CheckpointStore(root, keep=5), make_doc(2), new)
    assert on_disk(root, 1)["job_file"] != on_disk(root, 2)["job_file"]
    corrupt(checkpoint_json(root, 2))

    warnings = Warnings()
    got = CheckpointStore(root, warn=warnings).load_latest(FP)
    assert got.sequence == 1 and got.doc["identities"] == {old[0].path: old[0].identity}
    assert len(warnings) == 1 and warnings.naming("000002"), warnings


def test_every_checkpoint_corrupt_means_none(tmp_path):
    root = str(tmp_path / "ck")
    store = CheckpointStore(root, keep=5)
    for i in range(1, 4):
        save(store, make_doc(i))
    for sequence, corrupt in zip((1, 2, 3), (_truncate, _garbage, _flip_count_digit)):
        corrupt(checkpoint_json(root, sequence))
    warnings = Warnings()
    assert CheckpointStore(root, warn=warnings).load_latest(FP) is None
    assert len(warnings) == 3


def test_two_corrupt_newest_fall_back_two_steps(tmp_path):
    root = str(tmp_path / "ck")
    store = CheckpointStore(root, keep=5)
    for i in range(1, 5):
        save(store, make_doc(i))
    _truncate(checkpoint_json(root, 4))
    _garbage(checkpoint_json(root, 3))
    warnings = Warnings()
    got = CheckpointStore(root, warn=warnings).load_latest(FP)
    assert got.sequence == 2 and got.doc["files"] == 2
    assert warnings.naming("000004") and warnings.naming("000003")


def test_a_corrupt_checkpoint_is_reported_once_per_run(tmp_path):
    root = str(tmp_path / "ck")
    store = CheckpointStore(root, keep=5)
    for i in range(1, 4):
        save(store, make_doc(i))
    _truncate(checkpoint_json(root, 3))
    warnings = Warnings()
    resumed = CheckpointStore(root, keep=5, warn=warnings)  # what a rerun does: load, then save as it goes
    assert resumed.load_latest(FP).sequence == 2
    save(resumed, make_doc(4))
    save(resumed, make_doc(5))
    assert len(warnings) == 1, warnings


def test_checkpoint_of_another_input_set_is_not_applied(tmp_path):
    root = str(tmp_path / "ck")
    save(CheckpointStore(root), make_doc(3, fingerprint="aaaaaaaaaaaaaaaa"))
    warnings = Warnings()
    assert CheckpointStore(root, warn=warnings).load_latest("bbbbbbbbbbbbbbbb") is None
    assert len(warnings) == 1 and "another input" in warnings[0]
    assert CheckpointStore(root).load_latest("aaaaaaaaaaaaaaaa").doc["files"] == 3


def test_leftovers_of_a_killed_write_never_load_and_are_cleaned(tmp_path):
    root = str(tmp_path / "ck")
    store = CheckpointStore(root, keep=5)
    save(store, make_doc(1))
    # A killed writer left a complete-looking temporary folder holding a valid document newer than 000001 ...
    leftover = os.path.join(root, ".tmp-000002-999999")
    shutil.copytree(os.path.join(root, "000001"), leftover, symlinks=True)
    doc = dict(on_disk(root, 1), sequence=2, files=2)
    open(os.path.join(leftover, "checkpoint.json"), "wb").write(encode(doc))
    # ... and another one a torn document.
    torn = os.path.join(root, ".tmp-000002-999998")
    os.makedirs(torn)
    open(os.path.join(torn, "checkpoint.json"), "w").write('{"schema": 1, "fing')

    warnings = Warnings()
    assert CheckpointStore(root, warn=warnings).sequences() == [1]
    got = CheckpointStore(root, warn=warnings).load_latest(FP)
    assert got.sequence == 1 and got.doc["files"] == 1
    assert len(warnings) == 0

    save(CheckpointStore(root, keep=5), make_doc(3))  # the next save cleans them up
    assert sorted(n for n in os.listdir(root) if n.startswith(".tmp-")) == []
    assert CheckpointStore(root).sequences() == [1, 2]
    assert CheckpointStore(root).load_latest(FP).doc["files"] == 3


def test_leftover_with_a_reused_pid_does_not_break_the_next_save(tmp_path):
    root = str(tmp_path / "ck")
    save(CheckpointStore(root), make_doc(1))
    os.makedirs(os.path.join(root, f".tmp-000002-{os.getpid()}"))  # the dead writer had our pid
    folder = save(CheckpointStore(root), make_doc(2))
    assert CheckpointStore(root).load_latest(FP).folder == folder


def test_a_failed_write_leaves_the_previous_checkpoints_as_they_were(tmp_path, monkeypatch):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n"), ("b.log", b"[t] [INFO] y\n")])
    store = CheckpointStore(root, keep=2)
    save(store, make_doc(1), logs[:1])
    save(store, make_doc(2), logs[:1])
    before = sorted(os.listdir(root))
    real_rename = os.rename

    def full_disk(src, dst, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", full_disk)
    with pytest.raises(CheckpointWriteError, match="No space left"):
        save(store, make_doc(3), logs)
    monkeypatch.setattr(os, "rename", real_rename)
    assert sorted(os.listdir(root)) == before  # no leftover, nothing pruned
    assert CheckpointStore(root).load_latest(FP).doc["files"] == 2
    assert os.path.basename(save(store, make_doc(4), logs)) == "000003"  # and the next save works
    assert CheckpointStore(root).load_latest(FP).doc["files"] == 4


# --- epochs ------------------------------------------------------------------


def test_stale_epoch_when_a_newer_master_wrote(tmp_path):
    root = str(tmp_path / "ck")
    old = CheckpointStore(root)
    save(old, make_doc(1, epoch=1))
    save(CheckpointStore(root), make_doc(2, epoch=2))  # a newer master took over
    with pytest.raises(StaleEpoch):
        save(old, make_doc(3, epoch=1))
    with pytest.raises(StaleEpoch):
        save(CheckpointStore(root), make_doc(3, epoch=1))  # a restarted old master as well
    assert CheckpointStore(root).sequences() == [1, 2]
    assert CheckpointStore(root).load_latest(FP).doc["epoch"] == 2
    # The same or a newer epoch may write.
    save(CheckpointStore(root), make_doc(4, epoch=2))
    save(CheckpointStore(root), make_doc(5, epoch=3))
    assert CheckpointStore(root).load_latest(FP).doc["files"] == 5


def test_epochs_of_another_run_do_not_count(tmp_path):
    """Epochs restart with every launch: a checkpoint of epoch 5 from an earlier run does not silence this one."""
    root = str(tmp_path / "ck")
    save(CheckpointStore(root), dict(make_doc(1, epoch=5), run_id="earlier-run"))
    save(CheckpointStore(root), dict(make_doc(2, epoch=1), run_id="this-run"))
    got = CheckpointStore(root).load_latest(FP)
    assert got.doc["run_id"] == "this-run" and got.doc["files"] == 2
    save(CheckpointStore(root), dict(make_doc(3, epoch=3), run_id="this-run"))  # this run's new master
    with pytest.raises(StaleEpoch):
        save(CheckpointStore(root), dict(make_doc(4, epoch=1), run_id="this-run"))  # this run's old master


def test_own_checkpoints_never_look_stale(tmp_path):
    root = str(tmp_path / "ck")
    store = CheckpointStore(root)
    for i in range(1, 6):
        save(store, make_doc(i, epoch=7))
    assert store.sequences() == [3, 4, 5]


# --- the shared store of processed files -------------------------------------


def test_link_mode_stores_a_hard_link_once(tmp_path, monkeypatch):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [(f"f{i}.log", b"[t] [INFO] x\n" * (i + 1)) for i in range(3)])
    links = []
    real_link = os.link
    monkeypatch.setattr(os, "link", lambda src, dst, **kw: (links.append(src), real_link(src, dst, **kw))[1])
    store = CheckpointStore(root, keep=10, file_mode="link")
    save(store, make_doc(1), logs[:1])
    save(store, make_doc(2), logs[:2])
    save(store, make_doc(3), logs)
    save(store, make_doc(4), logs)
    assert sorted(links) == sorted(f.path for f in logs)  # one link per file and job
    links.clear()
    save(CheckpointStore(root, keep=10, file_mode="link"), make_doc(5), logs)  # a resumed run: at most one try per file
    assert sorted(links) in ([], sorted(f.path for f in logs))

    assert sorted(os.listdir(os.path.join(root, STORE))) == sorted(stored_name(f.path, f.identity) for f in logs)
    for f in logs:
        assert os.path.samefile(stored_path(root, f), f.path)
        assert os.stat(f.path).st_nlink == 2  # the input and its one link in the store


def test_copy_mode_stores_a_real_copy(tmp_path):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n" * 10), ("b.log", b"[t] [WARN] y\n")])
    save(CheckpointStore(root, file_mode="copy"), make_doc(1), logs)
    save(CheckpointStore(root, file_mode="copy"), make_doc(2), logs)  # a resumed run copies nothing again
    for f in logs:
        stored = stored_path(root, f)
        assert not os.path.samefile(stored, f.path)
        assert os.stat(stored).st_nlink == 1
        assert open(stored, "rb").read() == open(f.path, "rb").read()
    assert sorted(os.listdir(os.path.join(root, STORE))) == sorted(stored_name(f.path, f.identity) for f in logs)
    # A copy survives the original being rewritten.
    open(logs[0].path, "wb").write(b"new")
    assert open(stored_path(root, logs[0]), "rb").read() == b"[t] [INFO] x\n" * 10


def test_none_mode_stores_nothing(tmp_path, monkeypatch):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n")])
    monkeypatch.setattr(os, "link", lambda *a, **k: pytest.fail("linked in none mode"))
    monkeypatch.setattr(shutil, "copyfile", lambda *a, **k: pytest.fail("copied in none mode"))
    save(CheckpointStore(root, file_mode="none"), make_doc(1), logs)
    assert STORE not in os.listdir(root)
    assert os.listdir(os.path.join(root, "000001")) == ["checkpoint.json"]
    assert CheckpointStore(root).load_latest(FP).doc["files"] == 1


@pytest.mark.parametrize("mode", ["link", "copy"])
def test_store_leftover_of_a_killed_copy_does_not_break_later_saves(tmp_path, mode):
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [("a.log", b"[t] [INFO] x\n" * 5)])
    os.makedirs(os.path.join(root, STORE))
    open(stored_path(root, logs[0]) + ".tmp", "wb").write(b"[t] [IN")  # a copy killed half-way
    save(CheckpointStore(root, file_mode=mode), make_doc(1), logs)
    assert open(stored_path(root, logs[0]), "rb").read() == open(logs[0].path, "rb").read()
    if mode == "link":
        assert os.path.samefile(stored_path(root, logs[0]), logs[0].path)


def test_same_basename_in_different_folders_never_collides(tmp_path):
    root = str(tmp_path / "ck")
    a = write_logs(tmp_path / "a", [("node.log", b"[t] [INFO] from a\n")])
    b = write_logs(tmp_path / "b", [("node.log", b"[t] [ERROR] from b\n" * 2)])
    c = write_logs(tmp_path / "a" / "sub", [("node.log", b"[t] [WARN] from a/sub\n" * 3)])
    logs = a + b + c
    save(CheckpointStore(root), make_doc(1), logs)
    assert len(os.listdir(os.path.join(root, STORE))) == 3
    for f in logs:
        assert os.path.samefile(stored_path(root, f), f.path)


HOSTILE = [b"..", b"...", b"..log", b"a..b.log", b"-rf.log", b"line\nbreak.log", b"cr\rlf.log", b"tab\tname.log",
           b"bad\xff\xfe\xc3(.log", b"\xe9t\xe9.log", b"caf\xc3\xa9.log", b" .log", b"~.log", b"$HOME.log",
           b"*.log", b"%2e%2e%2f.log", b"x" * 250 + b".log", b"\\..\\..\\evil.log"]


def test_hostile_names_stay_inside_the_store(tmp_path):
    root = str(tmp_path / "ck")
    folder = tmp_path / "logs"
    names = [n for n in HOSTILE if n not in (b"..",)]  # ".." cannot be a file's name
    logs = write_logs(folder, [(n, b"[t] [INFO] " + bytes([65 + i]) + b"\n") for i, n in enumerate(names)])
    # ".." as a path *component*: a file reached through it.
    (folder / "deep").mkdir()
    logs.append(log_file(os.path.join(os.fsdecode(folder), "deep", "..", "..log")))
    store_dir = os.path.realpath(os.path.join(root, STORE))

    save(CheckpointStore(root, keep=5), make_doc(1), logs)
    doc = CheckpointStore(root).load_latest(FP).doc
    assert set(doc["identities"]) == {f.path for f in logs}  # non-UTF-8 names survive the JSON round trip
    for f in logs:
        name = stored_name(f.path, f.identity)
        assert "/" not in name and name not in (".", "..") and "\n" not in name and len(name.encode()) < 255
        target = os.path.join(root, STORE, name)
        assert os.path.dirname(os.path.realpath(target)) == store_dir
        assert os.path.samefile(target, f.path)
    # Nothing was created outside the checkpoint folder or the input folder.
    assert sorted(os.listdir(tmp_path)) == ["ck", "logs"]
    assert sorted(os.listdir(root)) == sorted(["000001", JOBS, STORE])
    assert len(os.listdir(store_dir)) == len(logs)


def test_stored_name_is_collision_free_and_tame():
    names = {stored_name(p, "1:2:3:4") for p in ["a/x.log", "b/x.log", "x.log", "a/x_log", "a/x?log"]}
    assert len(names) == 5
    assert stored_name("a/x.log", "1:2:3:4") != stored_name("a/x.log", "1:2:3:5")  # a changed file: another name
    assert stored_name("a/x.log", "1:2:3:4") == stored_name("a/x.log", "1:2:3:4")
    for path in ["..", "a/..", "/", "", "\udcff\udcfe", "a/\n", "a/" + "é" * 300]:
        name = stored_name(path, "1:2:3:4")
        assert re.fullmatch(r"[0-9a-f]{16}-[A-Za-z0-9._-]{1,80}", name), name


def test_cost_of_a_save_does_not_grow_with_earlier_checkpoints(tmp_path, monkeypatch):
    """Each save writes one folder, its document and its link, plus one store entry per *new* file."""
    root = str(tmp_path / "ck")
    logs = write_logs(tmp_path / "logs", [(f"f{i:03d}.log", b"[t] [INFO] x\n" * (i + 1)) for i in range(40)])
    calls = {"link": 0, "copy": 0, "write": 0, "job file": 0}
    real_link, real_copy, real_open, real_atomic = os.link, shutil.copyfile, open, checkpoint_module.write_atomic

    def counting(key, function):
        def wrapper(*args, **kwargs):
            calls[key] += 1
            return function(*args, **kwargs)
        return wrapper

    def counting_open(path, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            calls["write"] += 1
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "link", counting("link", real_link))
    monkeypatch.setattr(shutil, "copyfile", counting("copy", real_copy))
    monkeypatch.setattr(checkpoint_module, "write_atomic", counting("job file", real_atomic))
    monkeypatch.setattr(checkpoint_module, "open", counting_open, raising=False)

    per_save = []
    store = CheckpointStore(root, keep=1000)  # every earlier checkpoint stays on disk
    for i in range(1, 61):
        resumed = i == 31
        if resumed:
            store = CheckpointStore(root, keep=1000)  # half way: a resumed run with a new store
        before_entries, before_calls = entries(root), dict(calls)
        store.save(make_doc(1), logs[: i // 2], {f.path: f.identity for f in logs})
        created = entries(root) - before_entries
        new_files = i // 2 - (i - 1) // 2
        delta = {k: calls[k] - before_calls[k] for k in calls}
        per_save.append((i, len(created) - new_files, delta))
        if i == 1:
            continue  # the first save also makes files/, jobs/ and the job file
        assert delta["write"] == 1 and delta["copy"] == 0 and delta["job file"] == 0, per_save[-1]
        # a resumed run may try each file it already holds once; a running one links new files only
        assert delta["link"] == (i // 2 if resumed else new_files) or delta["link"] == new_files, per_save[-1]
        assert len(created) - new_files == 3, per_save[-1]  # folder, checkpoint.json, files link
    assert calls["job file"] == 1
    assert len(CheckpointStore(root).sequences()) == 60


# --- FileTracker, Checkpointer, restore --------------------------------------


def _corpus(tmp_path, sizes: dict[str, int]) -> list[LogFile]:
    folder = tmp_path / "logs"
    folder.mkdir(exist_ok=True)
    for name, lines in sizes.items():
        (folder / name).write_bytes(b"".join(b"[2026-01-01T00:00:00] [%s] line %d\n" % ([b"INFO", b"WARN", b"ERROR"][i % 3], i)
                                             for i in range(lines)))
    return find_log_files([str(folder)])


def test_file_is_processed_only_when_all_its_chunks_are_done(tmp_path):
    files = _corpus(tmp_path, {"big.log": 3000, "s1.log": 3, "s2.log": 5})
    big = next(f for f in files if f.path.endswith("big.log"))
    tasks = plan_tasks(files, chunk_bytes=big.size // 4 + 1, batch_bytes=1 << 20)
    chunks = [t for t in tasks if t.pieces[0].path == big.path]
    batch = [t for t in tasks if t.pieces[0].path != big.path]
    assert len(chunks) == 4 and len(batch) == 1 and len(batch[0].pieces) == 2

    tracker = FileTracker(files, tasks)
    assert tracker.processed == [] and sorted(tracker.pending()) == sorted(f.path for f in files)
    for chunk in chunks[:-1]:
        assert tracker.task_done(chunk.task_id) == 0
        assert big.path not in tracker.processed and big.path in tracker.pending()
    assert tracker.task_done(batch[0].task_id) == 2  # both small files at once
    assert tracker.task_done(batch[0].task_id) == 0  # a duplicate result changes nothing
    assert tracker.task_done("no-such-task") == 0
    assert big.path not in tracker.processed
    assert tracker.task_done(chunks[-1].task_id) == 1
    assert tracker.processed[-1] == big.path and tracker.pending() == []
    assert len(tracker.processed) == 3
    # Built from already-done tasks (a resume), it knows the same.
    again = FileTracker(files, tasks, done=[t.task_id for t in chunks[:2]] + [batch[0].task_id])
    assert sorted(again.processed) == sorted(f.path for f in files if f is not big)


def test_checkpointer_policy(tmp_path):
    files = _corpus(tmp_path, {f"f{i}.log": 3 for i in range(6)})
    tasks = plan_tasks(files, batch_bytes=1)  # one task per file
    assert len(tasks) == 6
    store = CheckpointStore(str(tmp_path / "ck"))
    cp = Checkpointer(store, CheckpointPolicy(every_files=2, interval_s=10.0), FileTracker(files, tasks), {"fingerprint": FP, "plan": {}}, now=0.0)
    assert cp.dirty and not cp.due(0.0)
    state = JobState()
    state.accept(tasks[0].task_id, analyse_pieces(tasks[0].pieces))
    cp.task_done(tasks[0].task_id)
    assert not cp.due(1.0)  # one file, not yet ten seconds
    assert cp.due(10.5)  # ... but results are waiting and the interval passed
    state.accept(tasks[1].task_id, analyse_pieces(tasks[1].pieces))
    cp.task_done(tasks[1].task_id)
    assert cp.due(1.0)  # two files
    cp.save(state, epoch=1, failed_workers={2}, now=1.0)
    assert not cp.dirty and not cp.due(100.0) and cp.written == 1
    doc = store.load_latest(FP).doc
    assert doc["files"] == 2 and doc["failed_workers"] == [2] and len(doc["processed_files"]) == 2
    assert len(doc["pending_files"]) == 4 and set(doc["tasks"]) == {tasks[0].task_id, tasks[1].task_id}


def test_restore_round_trip_through_a_checkpoint(tmp_path):
    files = _corpus(tmp_path, {"big.log": 2000, "a.log": 4, "b.log": 7})
    tasks = plan_tasks(files, chunk_bytes=20_000, batch_bytes=1)
    store = CheckpointStore(str(tmp_path / "ck"))
    tracker = FileTracker(files, tasks)
    cp = Checkpointer(store, CheckpointPolicy(), tracker, {"fingerprint": FP, "plan": {}}, now=0.0)
    state = JobState()
    for task in tasks[::2]:
        state.accept(task.task_id, analyse_pieces(task.pieces))
        cp.task_done(task.task_id)
    cp.save(state, epoch=1, failed_workers=(), now=0.0)

    restored = restore(store.load_latest(FP), find_log_files([str(tmp_path / "logs")]), tasks)
    assert dict(restored.state.items()) == dict(state.items())
    assert restored.state.total() == state.total()
    assert restored.files == len(tracker.processed)
    assert restored.changed == [] and restored.removed == []


def _checkpoint_of_everything(tmp_path, files, tasks):
    store = CheckpointStore(str(tmp_path / "ck"))
    tracker = FileTracker(files, tasks)
    cp = Checkpointer(store, CheckpointPolicy(), tracker, {"fingerprint": FP, "plan": {}}, now=0.0)
    state = JobState()
    for task in tasks:
        state.accept(task.task_id, analyse_pieces(task.pieces))
        cp.task_done(task.task_id)
    cp.save(state, epoch=1, failed_workers=(), now=0.0)
    return store.load_latest(FP), state


def test_restore_skips_a_changed_file_and_reports_it(tmp_path):
    files = _corpus(tmp_path, {"big.log": 2000, "a.log": 4, "b.log": 7})
    tasks = plan_tasks(files, chunk_bytes=20_000, batch_bytes=1)
    checkpoint, _ = _checkpoint_of_everything(tmp_path, files, tasks)
    changed = tmp_path / "logs" / "a.log"
    changed.write_bytes(b"[t] [ERROR] rewritten\n" * 9)  # in place: same inode, new size and content

    now = find_log_files([str(tmp_path / "logs")])
    new_tasks = plan_tasks(now, chunk_bytes=20_000, batch_bytes=1)
    restored = restore(checkpoint, now, new_tasks)
    assert restored.changed == [str(changed)] and restored.removed == []
    kept = {t.task_id for t in new_tasks if t.pieces[0].path != str(changed)}
    assert {task_id for task_id, _ in restored.state.items()} == kept
    assert restored.files == 2
    # Counting what is missing gives the new content, not the old one.
    total = restored.state.total()
    for task in new_tasks:
        if task.task_id not in restored.state:
            total.add(analyse_pieces(task.pieces))
    assert total.counts.get("ERROR", 0) == 9 + sum(1 for i in range(2000) if i % 3 == 2) + sum(1 for i in range(7) if i % 3 == 2)


def test_restore_of_a_replaced_file_with_the_same_size(tmp_path):
    files = _corpus(tmp_path, {"a.log": 4, "b.log": 7})
    tasks = plan_tasks(files, batch_bytes=1)
    checkpoint, _ = _checkpoint_of_everything(tmp_path, files, tasks)
    path = tmp_path / "logs" / "b.log"
    data = path.read_bytes().replace(b"[INFO]", b"[DEBG]")
    tmp = tmp_path / "logs" / "b.new"
    tmp.write_bytes(data)
    os.replace(tmp, path)  # same size, another inode
    now = find_log_files([str(tmp_path / "logs")])
    restored = restore(checkpoint, now, plan_tasks(now, batch_bytes=1))
    assert restored.changed == [str(path)] and restored.files == 1 and len(restored.state) == 1


def test_restore_reports_a_removed_file(tmp_path):
    files = _corpus(tmp_path, {"a.log": 4, "b.log": 7, "c.log": 2})
    tasks = plan_tasks(files, batch_bytes=1)
    checkpoint, _ = _checkpoint_of_everything(tmp_path, files, tasks)
    gone = tmp_path / "logs" / "b.log"
    gone.unlink()
    now = find_log_files([str(tmp_path / "logs")])
    restored = restore(checkpoint, now, plan_tasks(now, batch_bytes=1))
    assert restored.removed == [str(gone)] and restored.changed == []
    assert restored.files == 2 and len(restored.state) == 2
    assert restored.state.total().lines == 4 + 2


def test_restore_of_an_added_file_leaves_it_to_count(tmp_path):
    files = _corpus(tmp_path, {"a.log": 4})
    checkpoint, state = _checkpoint_of_everything(tmp_path, files, plan_tasks(files, batch_bytes=1))
    (tmp_path / "logs" / "z.log").write_bytes(b"[t] [INFO] new\n")
    now = find_log_files([str(tmp_path / "logs")])
    new_tasks = plan_tasks(now, batch_bytes=1)
    restored = restore(checkpoint, now, new_tasks)
    assert restored.files == 1 and restored.changed == [] and restored.removed == []
    assert dict(restored.state.items()) == dict(state.items())
    assert [t for t in new_tasks if t.task_id not in restored.state][0].pieces[0].path.endswith("z.log")


@pytest.mark.parametrize("spelling", ["./logs", "absolute"])
def test_resume_with_another_spelling_of_the_same_folder(tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    _corpus(tmp_path, {"a.log": 4, "b.log": 7})
    first = find_log_files(["logs"])
    tasks = plan_tasks(first, batch_bytes=1)
    checkpoint, state = _checkpoint_of_everything(tmp_path, first, tasks)
    assert checkpoint.doc["fingerprint"] == FP
    again = "./logs" if spelling == "./logs" else str(tmp_path / "logs")
    assert input_fingerprint([again], "*.log", False) == input_fingerprint(["logs"], "*.log", False)  # the same input set
    now = find_log_files([again])
    restored = restore(checkpoint, now, plan_tasks(now, batch_bytes=1))
    assert restored.removed == []
    assert len(restored.state) == len(state) and restored.files == 2


def test_partial_result_json_round_trip_is_exact():
    result = PartialResult({"INFO": 10**15, "Weird": 1}, 10**15 + 1, 3, 4, 5, 6)
    assert PartialResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result

"""Archives and workspaces: deterministic packing, safe extraction, `_agent_eval/` only at the end."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from proctor_jobs.arteval.archive import (
    ArchiveError,
    ArchiveRef,
    archive_members,
    archive_ref_for,
    eval_dirs,
    extract,
    fetch_archive,
    pack_directory,
)
from proctor_jobs.arteval.phases import hidden_paths
from proctor_jobs.arteval.workspace import Workspace
from proctor_jobs.store.fs import FilesystemStore


def make_artifact(root: Path) -> Path:
    files = {
        "README.md": "# demo\n",
        "src/app.py": "print('hi')\n",
        "_agent_eval/main.py": "print(4)\n",
        "_agent_eval/refs/table.ref.json": '{"secret": 42}\n',
        "nested/_agent_eval/check.py": "print(1)\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "src" / "__pycache__").mkdir()
    (root / "src" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    return root


def test_packing_is_deterministic_whatever_the_timestamps(tmp_path):
    root = make_artifact(tmp_path / "a")
    first = pack_directory(root)
    os.utime(root / "README.md", (1, 1))
    assert pack_directory(root) == first
    names = archive_members(first)
    assert "src/app.py" in names and not any("__pycache__" in n for n in names)
    assert eval_dirs(first) == ["_agent_eval", "nested/_agent_eval"]


def test_the_agent_workspace_has_no_evaluator_until_it_is_restored(tmp_path):
    archive = tmp_path / "artifact.tar.gz"
    archive.write_bytes(pack_directory(make_artifact(tmp_path / "a")))
    ws = Workspace(tmp_path / "ws", archive, "demo")
    ws.prepare()
    assert (ws.root / "src" / "app.py").read_text() == "print('hi')\n"
    assert not (ws.root / "_agent_eval").exists() and not (ws.root / "nested" / "_agent_eval").exists()
    assert ws.home.is_dir() and ws.tmp.is_dir()
    assert ws.restore_evaluator() == []
    assert (ws.root / "_agent_eval" / "refs" / "table.ref.json").read_text() == '{"secret": 42}\n'
    assert (ws.root / "nested" / "_agent_eval" / "check.py").is_file()


def test_whatever_the_agent_planted_at_evaluator_paths_is_removed_first(tmp_path):
    archive = tmp_path / "artifact.tar.gz"
    archive.write_bytes(pack_directory(make_artifact(tmp_path / "a")))
    ws = Workspace(tmp_path / "ws", archive, "demo")
    ws.prepare()
    root = ws.root
    # A fake evaluator that would report 4/4, a result that is the reference itself, a folder swapped for
    # a link, and an evaluator folder hidden deeper down.
    (root / "_agent_eval").mkdir()
    (root / "_agent_eval" / "main.py").write_text("print('{\"score\": 4}')\n")
    (root / "_agent_eval" / "extra.py").write_text("")
    (root / "results").mkdir()
    (root / "results" / "table.json").symlink_to("../_agent_eval/refs/table.ref.json")
    (root / "elsewhere").mkdir()
    (root / "nested").rename(root / "nested-real")
    (root / "nested").symlink_to("elsewhere")
    (root / "deep" / "x").mkdir(parents=True)
    (root / "deep" / "x" / "_agent_eval").write_text("not a folder")
    cleaned = ws.restore_evaluator()
    assert (root / "_agent_eval" / "main.py").read_text() == "print(4)\n"
    assert not (root / "_agent_eval" / "extra.py").exists()
    assert not (root / "results" / "table.json").exists()
    assert not (root / "deep" / "x" / "_agent_eval").exists()
    assert not (root / "nested").is_symlink() and (root / "nested" / "_agent_eval" / "check.py").is_file()
    assert not (root / "elsewhere" / "_agent_eval").exists()
    assert any("made by the agent" in c for c in cleaned)
    assert any("symlink results/table.json" in c for c in cleaned)
    assert any("replaced nested" in c for c in cleaned)


def test_a_workspace_made_read_only_by_the_agent_is_still_cleaned_up(tmp_path):
    archive = tmp_path / "artifact.tar.gz"
    archive.write_bytes(pack_directory(make_artifact(tmp_path / "a")))
    ws = Workspace(tmp_path / "ws", archive, "demo")
    ws.prepare()
    (ws.root / "locked").mkdir()
    (ws.root / "locked" / "f").write_text("x")
    (ws.root / "locked").chmod(0)
    ws.cleanup()
    assert not ws.base.exists()


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def test_archives_cannot_write_outside_the_workspace(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar([(tarfile.TarInfo("../escape.txt"), b"x")]))
    with pytest.raises(ArchiveError, match="outside"):
        extract(archive, tmp_path / "dest", evaluator=False)
    assert not (tmp_path / "escape.txt").exists()
    # An absolute name lands inside the workspace, never at its absolute path.
    archive.write_bytes(_tar([(tarfile.TarInfo("/etc/proctor-escape.txt"), b"x")]))
    extract(archive, tmp_path / "dest", evaluator=False)
    assert (tmp_path / "dest" / "etc" / "proctor-escape.txt").is_file()
    assert not Path("/etc/proctor-escape.txt").exists()


def test_archive_links_pointing_outside_are_refused(tmp_path):
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar([(link, b"")]))
    with pytest.raises(ArchiveError):
        extract(archive, tmp_path / "dest", evaluator=False)


def test_archive_references_are_checked_and_fetched_with_their_digest(tmp_path):
    data = pack_directory(make_artifact(tmp_path / "a"))
    digest = hashlib.sha256(data).hexdigest()
    store = FilesystemStore(tmp_path / "store")
    store.put_bytes("artifacts/x/artifact.tar.gz", data)
    for ref in (
        ArchiveRef.parse(archive_ref_for(data)),
        ArchiveRef.parse({"uri": "store:artifacts/x/artifact.tar.gz", "sha256": digest}),
        ArchiveRef.parse(
            {"uri": f"file://{tmp_path / 'store' / 'artifacts/x/artifact.tar.gz'}", "sha256": digest}
        ),
    ):
        assert fetch_archive(ref, tmp_path / "got.tar.gz", store) == digest
        assert (tmp_path / "got.tar.gz").read_bytes() == data
    wrong = ArchiveRef.parse({"uri": "store:artifacts/x/artifact.tar.gz", "sha256": "0" * 64})
    with pytest.raises(ArchiveError, match="expected 0000"):
        fetch_archive(wrong, tmp_path / "got.tar.gz", store)
    with pytest.raises(ArchiveError, match="no object at key"):
        fetch_archive(ArchiveRef.parse({"uri": "store:nope", "sha256": digest}), tmp_path / "g", store)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"uri": "s3://b/k"}, "sha256 is required"),
        ({"uri": "ftp://x", "sha256": "0" * 64}, "uri must start"),
        ({"base64": "%%%"}, "does not decode"),
        ({"base64": "aGk=", "uri": "s3://b/k"}, "exactly one"),
        ({"path": "x"}, "unknown key"),
        ("s3://b/k", "expected an object"),
    ],
)
def test_malformed_archive_references_say_what_is_wrong(value, words):
    with pytest.raises(ArchiveError, match=words):
        ArchiveRef.parse(value)


def test_hidden_paths_cover_every_folder_but_the_needed_ones_and_the_system(tmp_path):
    (tmp_path / "keep" / "deep").mkdir(parents=True)
    (tmp_path / "keep" / "sibling").mkdir()
    (tmp_path / "private").mkdir()
    (tmp_path / "link-to-keep").symlink_to(tmp_path / "keep")
    hide = hidden_paths([tmp_path / "keep" / "deep"])
    assert str(tmp_path / "private") in hide
    assert str(tmp_path / "keep" / "sibling") in hide
    assert str(tmp_path / "keep" / "deep") not in hide and str(tmp_path / "keep") not in hide
    assert str(tmp_path / "link-to-keep") not in hide  # covering a link would cover its target
    assert not any(h in ("/usr", "/etc", "/bin", "/proc") for h in hide)
    assert not any(str(tmp_path / "keep" / "deep").startswith(h + "/") for h in hide)

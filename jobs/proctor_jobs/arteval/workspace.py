"""The scratch copy of one artifact, in which the agent works and the evaluator then judges.

Layout (all under `base`, the only place the phases may write):

    base/<name>/         the artifact root (without its `_agent_eval/` folders until the oracle phase)
    base/.arteval-home/  HOME of both phases (what the agent installs for its user, the evaluator sees)
    base/.arteval-tmp/   TMPDIR

The archive itself waits in a private folder of the worker outside `base` (see `phases.hidden_paths` for
why the agent cannot reach it). `restore_evaluator` puts the evaluator folders back only after the agent
is gone, first removing whatever the agent left at those paths or pointing into them.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from proctor_jobs.arteval.archive import EVAL_DIR, ArchiveError, eval_dirs, extract


@dataclass
class Workspace:
    base: Path
    archive: Path
    name: str = "artifact"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.name.startswith(".") or not self.name:
            self.name = f"artifact-{self.name.lstrip('.')}"

    @property
    def root(self) -> Path:
        return self.base / self.name

    @property
    def home(self) -> Path:
        return self.base / ".arteval-home"

    @property
    def tmp(self) -> Path:
        return self.base / ".arteval-tmp"

    def prepare(self) -> int:
        """A fresh workspace with the artifact's files (a retried pod starts clean, as a new container)."""
        if self.base.exists():
            remove_tree(self.base)
        for path in (self.root, self.home, self.tmp):
            path.mkdir(parents=True)
        self.base.chmod(0o755)
        return extract(self.archive, self.root, evaluator=False)

    def restore_evaluator(self) -> list[str]:
        """Put the pristine `_agent_eval/` folders back; returns what had to be cleaned up first."""
        cleaned: list[str] = []
        for path in self._agent_made_eval_paths():
            cleaned.append(f"removed {path.relative_to(self.root)} (made by the agent)")
            remove_tree(path)
        for link in self._links_into_eval():
            cleaned.append(f"removed symlink {link.relative_to(self.root)} -> {os.readlink(link)}")
            link.unlink()
        for folder in eval_dirs(self.archive):
            self._make_real_dirs(Path(folder).parent, cleaned)
        extract(self.archive, self.root, evaluator=True)
        self.notes.extend(cleaned)
        return cleaned

    def _agent_made_eval_paths(self) -> list[Path]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in (*dirnames, *filenames):
                if name == EVAL_DIR:
                    found.append(Path(dirpath) / name)
            dirnames[:] = [d for d in dirnames if d != EVAL_DIR]
        return found

    def _links_into_eval(self) -> list[Path]:
        """Symlinks whose target passes through an `_agent_eval` folder: once the folder is back, such a link
        would let "results" be the reference files themselves."""
        links = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in (*dirnames, *filenames):
                path = Path(dirpath) / name
                if path.is_symlink() and EVAL_DIR in Path(os.readlink(path)).parts:
                    links.append(path)
        return links

    def _make_real_dirs(self, relative: Path, cleaned: list[str]) -> None:
        """Each folder on the way to an evaluator folder must be a real directory inside the workspace."""
        current = self.root
        for part in relative.parts:
            if part in ("", "."):
                continue
            current = current / part
            if current.is_symlink() or (current.exists() and not current.is_dir()):
                cleaned.append(f"replaced {current.relative_to(self.root)} (a link or file) by a folder")
                current.unlink()
            current.mkdir(exist_ok=True)

    def snapshot(self, dest: Path, limit_bytes: int) -> tuple[Path | None, str]:
        """A tar.gz of the finished workspace (`keep_container`), unless larger than `limit_bytes`."""
        size = tree_size(self.root)
        if size > limit_bytes:
            return (
                None,
                f"workspace not kept: {size / 1e6:.0f} MB exceeds the {limit_bytes / 1e6:.0f} MB limit",
            )
        try:
            with tarfile.open(str(dest), "w:gz") as tar:
                tar.add(str(self.root), arcname=self.name)
        except (OSError, tarfile.TarError) as exc:
            raise ArchiveError(f"cannot archive the workspace: {exc}") from None
        return dest, f"workspace kept ({size / 1e6:.1f} MB before compression)"

    def cleanup(self) -> None:
        remove_tree(self.base)


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def remove_tree(path: Path) -> None:
    """Delete a tree the agent may have made read-only (chmod 000 folders must not break cleanup)."""

    def make_writable(func, target, _exc) -> None:
        parent = os.path.dirname(target)
        for p in (parent, target):
            try:
                mode = os.lstat(p).st_mode
                if not stat.S_ISLNK(mode):
                    os.chmod(p, mode | stat.S_IRWXU)
            except OSError:
                pass
        func(target)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=make_writable)

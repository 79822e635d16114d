"""Artifact trees as tar.gz archives: pack, reference, fetch, verify, extract.

An ArtEvalBench task names a folder of the original repository; a worker pod has no such folder. So the
artifact's files travel as one archive, referenced from the task by `artifact_archive`:

    {"base64": "<tar.gz>"}                                  inline (small artifacts, e.g. the example)
    {"uri": "store:<key>", "sha256": "<hex>"}               a key in the run's own store (local or S3)
    {"uri": "s3://bucket/key", "sha256": "<hex>"}           any S3 object (credentials from the environment)
    {"uri": "https://host/path.tar.gz", "sha256": "<hex>"}  a download
    {"uri": "file:///abs/path.tar.gz", "sha256": "<hex>"}   a local file (local mode)

Everything but inline archives must name its sha256, so a task always means the same bytes. Packing is
deterministic (sorted entries, zero timestamps and owners), so the same folder gives the same digest.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import os
import re
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVAL_DIR = "_agent_eval"
_SHA = re.compile(r"^[0-9a-f]{64}$")
_SCHEMES = ("store:", "s3://", "http://", "https://", "file://")
#: the timestamp of every packed file: fixed, so digests do not depend on when files were touched, and
#: after 1980, because zip files (Python's zipapp, jar) cannot hold older ones
PACK_MTIME = 1_577_836_800  # 2020-01-01T00:00:00Z
#: never packed: interpreter caches and VCS metadata would make digests depend on who packed
EXCLUDED = ("__pycache__", ".DS_Store")


class ArchiveError(ValueError):
    """An archive reference is malformed, unreachable, or its content is not what it claims."""


@dataclass(frozen=True)
class ArchiveRef:
    base64: str | None = None
    uri: str | None = None
    sha256: str | None = None

    @classmethod
    def parse(cls, value: Any) -> ArchiveRef:
        if not isinstance(value, dict):
            raise ArchiveError('expected an object {"base64": ...} or {"uri": ..., "sha256": ...}')
        unknown = set(value) - {"base64", "uri", "sha256"}
        if unknown:
            raise ArchiveError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: base64, uri, sha256")
        inline, uri, sha = value.get("base64"), value.get("uri"), value.get("sha256")
        if (inline is None) == (uri is None):
            raise ArchiveError("give exactly one of base64, uri")
        if sha is not None and (not isinstance(sha, str) or not _SHA.match(sha)):
            raise ArchiveError("sha256 must be 64 lowercase hex digits")
        if uri is not None:
            if not isinstance(uri, str) or not uri.startswith(_SCHEMES):
                raise ArchiveError(f"uri must start with one of {', '.join(_SCHEMES)}")
            if sha is None:
                raise ArchiveError("sha256 is required with uri (so the task always means the same files)")
        ref = cls(base64=inline, uri=uri, sha256=sha)
        if inline is not None:
            if not isinstance(inline, str):
                raise ArchiveError("base64 must be a string")
            data = ref.inline_bytes()
            if sha is not None and hashlib.sha256(data).hexdigest() != sha:
                raise ArchiveError("the inline archive does not match its sha256")
        return ref

    def inline_bytes(self) -> bytes:
        try:
            return base64.b64decode(self.base64 or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ArchiveError(f"base64 does not decode: {exc}") from None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("base64", self.base64), ("uri", self.uri), ("sha256", self.sha256)) if v}

    @property
    def label(self) -> str:
        return self.uri or f"inline archive ({len(self.base64 or '') * 3 // 4} bytes)"


def pack_directory(root: Path) -> bytes:
    """A deterministic tar.gz of `root`'s contents (paths relative to it)."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"{root}: not a directory")
    buffer = io.BytesIO()
    # gzip's header carries a timestamp; fix it so equal trees give equal bytes.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _walk_sorted(root):
            rel = path.relative_to(root).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.mtime = PACK_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = (0o755 if info.isdir() or info.mode & 0o111 else 0o644) if not info.issym() else 0o777
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _walk_sorted(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED)
        base = Path(dirpath)
        for name in dirnames:
            yield base / name
        for name in sorted(filenames):
            if name not in EXCLUDED and not name.endswith(".pyc"):
                yield base / name


def _open(data_or_path: bytes | Path) -> tarfile.TarFile:
    try:
        if isinstance(data_or_path, bytes):
            return tarfile.open(fileobj=io.BytesIO(data_or_path), mode="r:*")
        return tarfile.open(str(data_or_path), mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"not a readable tar archive: {exc}") from None


def _name(member: tarfile.TarInfo) -> str:
    return member.name.lstrip("/").removeprefix("./")


def is_eval_path(name: str) -> bool:
    """Whether an archive path lies in (or is) an evaluator folder, at any depth."""
    return EVAL_DIR in name.split("/")


def archive_members(data: bytes | Path) -> set[str]:
    """The names of the regular files in an archive."""
    with _open(data) as tar:
        try:
            return {_name(m) for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"corrupt tar archive: {exc}") from None


def eval_dirs(data: bytes | Path) -> list[str]:
    """Every `_agent_eval` folder of an archive, as paths relative to the artifact root."""
    found: set[str] = set()
    with _open(data) as tar:
        for member in tar.getmembers():
            parts = _name(member).split("/")
            if EVAL_DIR in parts:
                found.add("/".join(parts[: parts.index(EVAL_DIR) + 1]))
    return sorted(found)


def extract(archive: Path, dest: Path, *, evaluator: bool) -> int:
    """Extract the artifact's own files (`evaluator=False`) or only its evaluator folders (True).

    Uses tarfile's "data" filter: no absolute paths, nothing outside `dest` (also through symlinks already
    on disk), no device files. Returns the number of members extracted.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with _open(archive) as tar:
        try:
            members = [m for m in tar.getmembers() if is_eval_path(_name(m)) == evaluator]
            tar.extractall(str(dest), members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ArchiveError(f"cannot extract the artifact archive: {exc}") from None
    return len(members)


def fetch_archive(ref: ArchiveRef, dest: Path, store: Any = None, attempts: int = 4) -> str:
    """Write the archive's bytes to `dest` and return their sha256 (verified against the reference)."""
    if ref.base64 is not None:
        data = ref.inline_bytes()
    else:
        data = _retrying(lambda: _download(ref.uri or "", store), ref.uri or "", attempts)
    digest = hashlib.sha256(data).hexdigest()
    if ref.sha256 and digest != ref.sha256:
        raise ArchiveError(f"{ref.label} has sha256 {digest}, expected {ref.sha256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return digest


def _download(uri: str, store: Any) -> bytes:
    if uri.startswith("store:"):
        if store is None:
            raise ArchiveError(f"{uri}: no store to read it from")
        return store.get_bytes(uri.removeprefix("store:"))
    if uri.startswith("s3://"):
        from proctor_jobs.store import open_store

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return open_store(f"s3://{bucket}").get_bytes(key)
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://")).read_bytes()
    with urllib.request.urlopen(uri, timeout=120) as response:
        return response.read()


def _retrying(fn, label: str, attempts: int) -> bytes:
    """Retry transient failures with exponential backoff; a missing object fails at once."""
    from proctor_jobs.store import KeyNotFound

    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (KeyNotFound, FileNotFoundError, ArchiveError) as exc:
            raise ArchiveError(f"{label}: {exc}") from None
        except Exception as exc:
            if attempt == attempts:
                raise ArchiveError(f"{label}: failed after {attempts} attempts: {exc}") from None
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def archive_ref_for(data: bytes, uri: str | None = None) -> dict[str, str]:
    """The `artifact_archive` value for archive bytes: inline, or at `uri` with its digest."""
    digest = hashlib.sha256(data).hexdigest()
    if uri is None:
        return {"base64": base64.b64encode(data).decode(), "sha256": digest}
    return {"uri": uri, "sha256": digest}

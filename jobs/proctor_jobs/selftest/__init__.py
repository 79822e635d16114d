"""The hostile suite: attacks written as answers, each with the outcome that counts as safe.

Cases are YAML files (`tests/hostile/<target>/*.yaml`): `name`, `target` (`oracle` or `render`),
`attack` (one line), `answer` (the model's answer text; `answer_repeat` pads it to a size) and `expect`
(`passed`, `reason_contains`, or a render case's own checks). Runners put each case through the real
stage code beside well-behaved neighbours and report one row per case: attack, tier, outcome, time and
`escaped` — true when the outcome differs from `expect`, a neighbour's verdict changed, a canary
secret reached a record, or the loopback canary saw a connection.
"""

from __future__ import annotations

import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class CaseError(ValueError):
    pass


def load_cases(directory: str | Path, target: str | None = None) -> list[dict[str, Any]]:
    """Every case under `directory` (recursively), checked; `target` keeps one kind."""
    cases, names = [], {}
    root = Path(directory)
    for path in sorted(root.rglob("*.yaml")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # hidden: e.g. the `..data` copy a mounted ConfigMap keeps beside its files
        try:
            case = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CaseError(f"{path}: cannot read the case: {exc}") from None
        if not isinstance(case, dict):
            raise CaseError(f"{path}: a case is a mapping")
        for key in ("name", "target", "attack", "expect"):
            if key not in case:
                raise CaseError(f"{path}: field {key!r} is missing")
        if "answer" not in case:
            raise CaseError(f"{path}: field 'answer' is missing")
        key = (case["target"], case["name"])
        if key in names:
            raise CaseError(f"{path}: name {case['name']!r} is also used by {names[key]}")
        names[key] = path
        case["path"] = str(path)
        if target in (None, "all", case["target"]):
            cases.append(case)
    return cases


def answer_text(case: dict[str, Any], substitutions: dict[str, str]) -> str:
    text = case["answer"]
    for marker, value in substitutions.items():
        text = text.replace(marker, value)
    repeat = case.get("answer_repeat")
    if repeat:
        unit = repeat["text"]
        text = unit * (int(repeat["bytes"]) // max(1, len(unit.encode()))) + text
    return text


@dataclass
class Canary:
    """A loopback listener that must see nothing, and secret values that must appear nowhere."""

    port: int = 0
    seen: list[bytes] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        token = secrets.token_hex(8)
        self.secrets = {
            "AWS_ACCESS_KEY_ID": f"AKIACANARY{token.upper()}",
            "AWS_SECRET_ACCESS_KEY": f"canary-secret-{token}",
            "PROCTOR_JUDGE_API_KEY": f"canary-judge-{token}",
            "PROCTOR_REFERENCE": f"canary-reference-{token}",
        }
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(0.2)
                try:
                    self.seen.append(conn.recv(100) or b"<connected>")
                except OSError:
                    self.seen.append(b"<connected>")

    def leaked(self, text: str) -> list[str]:
        """Names of the secrets whose value occurs in `text`."""
        return [name for name, value in self.secrets.items() if value in text]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()

    def __enter__(self) -> Canary:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def format_table(rows: list[dict[str, Any]]) -> str:
    """attack, target, tier, outcome, time, escaped — one line each, aligned."""
    header = ("attack", "target", "tier", "outcome", "time", "escaped")
    lines = [
        (
            r["attack"],
            r["target"],
            r.get("tier", ""),
            r["outcome"][:70],
            f"{r['time_s']:.2f}s",
            "YES" if r["escaped"] else "no",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=False)]
    out = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths, strict=False))]
    out += ["  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=False)) for line in lines]
    return "\n".join(out)

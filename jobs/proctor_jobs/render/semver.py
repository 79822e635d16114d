"""Enough of npm's semver to pick a cached library version for the version a CDN URL names.

CDN URLs name versions the way npm does: exact (`react@18.2.0`), partial (`vue@3`, `d3@7.8`),
ranges (`^4.4.0`, `~1.9`, `>=2 <3`, `1.x`, `1 || 2`, `1.2 - 1.4`) or a dist-tag (`latest`, `next`).
Prereleases match only a range that names a prerelease of the same major.minor.patch, as in npm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text.strip())
        if not m or m.group(2) is None or m.group(3) is None:
            raise ValueError(f"not a full semantic version: {text!r}")
        pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre)

    def _key(self):
        # A release sorts after its prereleases; numeric identifiers sort before alphanumeric ones.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(str(p) for p in self.pre) if self.pre else "")


def _partial(text: str) -> tuple[int | None, int | None, int | None, tuple]:
    text = text.strip().lstrip("=v")
    if text in ("", "*", "x", "X"):
        return None, None, None, ()
    m = re.match(r"^(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+\S+)?$", text)
    if not m:
        raise ValueError(f"not a version or version range: {text!r}")

    def num(group: str | None) -> int | None:
        return None if group is None or group in "xX*" else int(group)

    major, minor, patch = num(m.group(1)), num(m.group(2)), num(m.group(3))
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
    return major, minor, patch, pre


def _floor(major, minor, patch, pre) -> Version:
    return Version(major or 0, minor or 0, patch or 0, pre)


def _bump(major, minor, patch) -> Version:
    """The first version above a partial version: 1 -> 2.0.0, 1.2 -> 1.3.0."""
    if minor is None:
        return Version(major + 1, 0, 0, (0,))
    if patch is None:
        return Version(major, minor + 1, 0, (0,))
    return Version(major, minor, patch + 1, (0,))


Comparator = tuple[str, Version]


def _comparators(part: str) -> list[Comparator]:
    part = part.strip()
    hyphen = re.match(r"^(\S+)\s+-\s+(\S+)$", part)
    if hyphen:
        low, high = _partial(hyphen.group(1)), _partial(hyphen.group(2))
        out = [(">=", _floor(*low))]
        if high[0] is not None:
            out.append(("<", _bump(*high[:3])) if high[2] is None else ("<=", _floor(*high)))
        return out
    out: list[Comparator] = []
    for token in re.findall(r"(?:[<>]=?|=|\^|~>?)?\s*[^\s<>=^~]+", part):
        m = re.match(r"^([<>]=?|=|\^|~>?)?\s*(.*)$", token.strip())
        op, rest = m.group(1) or "", m.group(2)
        major, minor, patch, pre = _partial(rest)
        if major is None:
            out.append((">=", Version(0, 0, 0)))
            continue
        if op in ("", "="):
            if patch is None:
                out += [(">=", _floor(major, minor, patch, pre)), ("<", _bump(major, minor, patch))]
            else:
                out.append(("=", Version(major, minor, patch, pre)))
        elif op == "^":
            low = _floor(major, minor, patch, pre)
            if major > 0 or minor is None:
                high = Version(major + 1, 0, 0, (0,))
            elif minor > 0 or patch is None:
                high = Version(0, minor + 1, 0, (0,))
            else:
                high = Version(0, 0, (patch or 0) + 1, (0,))
            out += [(">=", low), ("<", high)]
        elif op in ("~", "~>"):
            low = _floor(major, minor, patch, pre)
            high = Version(major + 1, 0, 0, (0,)) if minor is None else Version(major, minor + 1, 0, (0,))
            out += [(">=", low), ("<", high)]
        elif op in (">", "<="):
            if patch is None:  # >1.2 means >=1.3.0; <=1.2 means <1.3.0
                out.append((">=" if op == ">" else "<", _bump(major, minor, patch)))
            else:
                out.append((op, Version(major, minor, patch, pre)))
        else:  # >= or <
            out.append((op, _floor(major, minor, patch, pre)))
    return out


def _test(op: str, version: Version, bound: Version) -> bool:
    return {
        "=": version == bound,
        ">": version > bound,
        ">=": version >= bound,
        "<": version < bound,
        "<=": version <= bound,
    }[op]


def satisfies(version: str | Version, spec: str) -> bool:
    """Whether `version` is in the npm range `spec` (a dist-tag is not a range: use `best_match`)."""
    v = version if isinstance(version, Version) else Version.parse(version)
    for alternative in (spec or "*").split("||"):
        comparators = _comparators(alternative)
        if not all(_test(op, v, bound) for op, bound in comparators):
            continue
        if v.pre:  # a prerelease only matches a comparator naming the same core version's prerelease
            core = (v.major, v.minor, v.patch)
            if not any(b.pre and (b.major, b.minor, b.patch) == core for _, b in comparators):
                continue
        return True
    return False


def best_match(versions: list[str], spec: str | None) -> str | None:
    """The highest of `versions` in range `spec`; `None`, '' or a dist-tag means the highest release."""
    parsed = sorted((Version.parse(v) for v in versions), reverse=True)
    if not spec or (re.fullmatch(r"[A-Za-z][\w.-]*", spec) and spec not in ("x", "X")):
        release = next((v for v in parsed if not v.pre), None)
        return str(release) if release else None
    try:
        return next((str(v) for v in parsed if satisfies(v, spec)), None)
    except ValueError:
        return None


def nearest(versions: list[str], spec: str) -> str | None:
    """The cached version closest to what `spec` asks for, within the same major line.

    Used when nothing satisfies the range (an answer pins `three@0.150.0`, the cache holds 0.149.0
    and 0.160.1): a patch release of the same major.minor first (`three@0.160.0` gets 0.160.1: the
    same API, where 0.149.0 is eleven releases older), closest at or below, else closest above;
    otherwise same major (for 0.x, any 0.x), preferring the closest version at or below the lowest
    version the range accepts, else the closest above.
    """
    try:
        comparators = [c for alternative in spec.split("||") for c in _comparators(alternative)]
    except ValueError:
        return None
    lows = [bound for op, bound in comparators if op in (">=", ">", "=")]
    if not lows:
        return None
    target = min(lows)
    same_major = [Version.parse(v) for v in versions]
    same_major = [v for v in same_major if v.major == target.major and not v.pre]
    if not same_major:
        return None
    same_minor = [v for v in same_major if v.minor == target.minor]
    pool = same_minor or same_major
    below = [v for v in pool if v <= target]
    return str(max(below) if below else min(pool))

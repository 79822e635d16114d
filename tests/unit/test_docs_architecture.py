"""docs/architecture.md's "## Layout" names every package and module of the control plane
(operator/proctor) and the data plane (jobs/proctor_jobs) and nothing that is gone, and its
`proctor run|crds|...` list is exactly the CLI's subcommands — as docs/configuration.md is checked
against the models."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"
ROOTS = ("operator/proctor", "jobs/proctor_jobs")
#: files every package has that say nothing about the layout
NOT_LISTED = {"__init__.py", "__main__.py"}


def layout_block(text: str) -> str:
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```\n(.*?)```", section, re.S).group(1)


def documented(block: str) -> dict[str, set[str]]:
    """Root folder -> the names in the block's first column under it (`api/`, `cli.py`, ...).

    An entry is a line indented two spaces: names separated by ", " and then two or more spaces
    before the description; deeper-indented lines continue a description."""
    entries: dict[str, set[str]] = {}
    root = None
    for line in block.splitlines():
        head = re.match(r"(\S+/)\s{2,}", line)
        if head:
            root = head.group(1).rstrip("/")
            entries[root] = set()
            continue
        entry = re.match(r" {2}(\S[^ ]*(?:, [^ ]+)*)(?:\s{2,}|$)", line)
        if entry and root is not None:
            entries[root] |= {name.strip() for name in entry.group(1).split(", ")}
    return entries


def in_code(root: str) -> set[str]:
    folder = REPO / root
    packages = {f"{p.name}/" for p in folder.iterdir() if (p / "__init__.py").exists()}
    modules = {p.name for p in folder.glob("*.py")} - NOT_LISTED
    return packages | modules


def documented_commands(text: str) -> list[str]:
    match = re.search(r"`proctor ((?:[a-z]+\|\s*)+[a-z]+)`", text)
    assert match, "architecture.md lists no `proctor a|b|...` commands"
    return [c.strip() for c in match.group(1).split("|")]


def cli_commands() -> list[str]:
    from proctor.cli import COMMANDS, build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "command"]
    # Every module in COMMANDS registers its subcommand in this (full) install.
    assert sorted(sub.choices) == sorted(COMMANDS)
    return list(sub.choices)


def test_the_layout_names_every_package_and_module_and_nothing_else():
    entries = documented(layout_block(DOC.read_text()))
    assert sorted(entries) == sorted(ROOTS)
    for root in ROOTS:
        missing = sorted(in_code(root) - entries[root])
        gone = sorted(entries[root] - in_code(root))
        assert not missing, f"docs/architecture.md Layout does not name {root}/{missing}"
        assert not gone, f"docs/architecture.md Layout names {root}/{gone}, which do not exist"


def test_the_command_list_is_the_clis():
    documented_list = documented_commands(DOC.read_text())
    assert len(documented_list) == len(set(documented_list)), documented_list
    assert sorted(documented_list) == sorted(cli_commands())


def test_the_layout_check_sees_a_missing_and_a_stale_entry():
    """The parser above is what the two tests rely on: a module left out, or a name that no longer
    exists, must show up as a difference."""
    block = layout_block(DOC.read_text())
    entries = documented(block)
    assert {"api/", "cli.py", "commands/", "results.py", "report_html.py"} <= entries["operator/proctor"]
    assert {"worker.py", "store/"} <= entries["jobs/proctor_jobs"]
    # An entry dropped from the doc is missing; one invented is stale.
    without = documented(block.replace("  cost.py ", "  "))
    assert "cost.py" not in without["operator/proctor"]
    invented = documented(block.replace("  metrics.py ", "  metrics.py, ghost.py "))
    assert "ghost.py" in invented["operator/proctor"] - in_code("operator/proctor")
    # A continuation line of a description is not an entry.
    assert not any(" " in name for names in entries.values() for name in names)
    assert documented_commands("`proctor run|crds|\n  docs`") == ["run", "crds", "docs"]

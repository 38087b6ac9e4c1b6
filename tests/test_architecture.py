"""docs/architecture.md names every module of the package, with the job its docstring states.

The module table between the markers is generated from the package itself; `pytest
--update-golden` rewrites it. A module without a docstring fails here, so the table never
goes stale and a newcomer can find where a request goes by reading folder names.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "ingressproxy"
DOC = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- modules: generated from the package's docstrings by tests/test_architecture.py -->"
END = "<!-- /modules -->"


def _docstring(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return "" if doc is None else doc


def _summary(doc: str) -> str:
    """The docstring's first paragraph on one line, Markdown-safe for a table cell."""
    first = doc.strip().split("\n\n", 1)[0]
    return re.sub(r"\s+", " ", first).replace("|", "\\|")


def _folders() -> list[Path]:
    packages = (p for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists())
    return [PACKAGE, *sorted(packages)]


def generated() -> str:
    lines: list[str] = []
    for folder in _folders():
        rel = folder.relative_to(ROOT).as_posix()
        lines.append(f"### `{rel}/`")
        lines.append("")
        lines.append(_summary(_docstring(folder / "__init__.py")))
        lines.append("")
        lines.append("| module | job |")
        lines.append("| --- | --- |")
        for module in sorted(folder.glob("*.py")):
            if module.name == "__init__.py":
                continue
            lines.append(f"| `{module.name}` | {_summary(_docstring(module))} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def test_every_module_and_package_says_its_job() -> None:
    missing = [
        p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if not _docstring(p).strip()
    ]
    assert missing == []


def test_architecture_doc_names_every_module(request: pytest.FixtureRequest) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{DOC} needs the markers {BEGIN} ... {END}"
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    want = "\n" + generated() + "\n"
    if request.config.getoption("--update-golden"):
        DOC.write_text(head + BEGIN + want + END + tail, encoding="utf-8")
        return
    assert current == want, "docs/architecture.md is stale: run pytest --update-golden"

"""The documentation stays true to the code: every command-line option and INGRESSPROXY_*
variable is documented in docs/cli.md, links between README and docs resolve, and the README
keeps its two commands. (`make check` builds the MkDocs site with --strict.)"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from ingressproxy.cli.main import build_parser
from ingressproxy.server.settings import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CLI_DOC = DOCS / "cli.md"
ROUTING_SECTION = "Routing options"


def sections(text: str) -> dict[str, str]:
    """`## Title` -> the text up to the next `## ` heading."""
    parts = re.split(r"^## +(.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")]


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_is_documented(command: str) -> None:
    doc = sections(CLI_DOC.read_text(encoding="utf-8"))
    assert command in doc, f"docs/cli.md has no '## {command}' section"
    routing = next((body for title, body in doc.items() if title.startswith(ROUTING_SECTION)), "")
    text = doc[command] + routing
    missing = [opt for opt in option_strings(subcommands()[command]) if f"`{opt}" not in text]
    assert missing == [], f"docs/cli.md does not document `{command}` options {missing}"


def test_routing_options_section_lists_only_shared_options() -> None:
    doc = sections(CLI_DOC.read_text(encoding="utf-8"))
    routing = next(body for title, body in doc.items() if title.startswith(ROUTING_SECTION))
    documented = set(re.findall(r"`(--[a-z-]+)", routing))
    for command in ("serve", "check", "explain"):
        options = set(option_strings(subcommands()[command]))
        assert documented <= options, (command, sorted(documented - options))


def environment_variables() -> set[str]:
    """Every INGRESSPROXY_* variable the settings' one resolution (settings.resolve) reads:
    asked of an environment that records each name looked up."""
    asked: set[str] = set()

    class Recording(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            asked.add(key)
            return default

    Settings.from_env(Recording())
    return asked


def test_every_environment_variable_is_documented() -> None:
    doc = CLI_DOC.read_text(encoding="utf-8")
    variables = environment_variables()
    assert {"INGRESSPROXY_MANIFESTS", "INGRESSPROXY_BACKEND", "INGRESSPROXY_POLL"} <= variables
    missing = sorted(v for v in variables if f"`{v}`" not in doc)
    assert missing == [], f"docs/cli.md does not document {missing}"


def test_one_environment_table_follows_the_naming_rule() -> None:
    """docs/cli.md's Environment table lists exactly the variables resolution reads, each the
    one INGRESSPROXY_<FLAG> names for its option."""
    section = sections(CLI_DOC.read_text(encoding="utf-8"))["Environment"]
    rows = re.findall(r"^\| `(INGRESSPROXY_[A-Z_]+)` \| `([^`]+)` \|", section, flags=re.M)
    assert sorted(v for v, _ in rows) == sorted(environment_variables())
    for variable, option in rows:
        assert variable == env_name("manifests" if option == "DIR" else option), option


def markdown_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name
)
def test_relative_links_resolve(page: Path) -> None:
    for link in markdown_links(page):
        if re.match(r"[a-z]+:", link) or link.startswith("#"):
            continue
        target = (page.parent / link.split("#", 1)[0]).resolve()
        assert target.exists(), f"{page.name}: broken link {link}"
        anchor = link.partition("#")[2]
        if anchor and target.suffix == ".md":
            headings = re.findall(r"^#+ +(.+)$", target.read_text(encoding="utf-8"), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{page.name}: no heading for #{anchor} in {link}"


def test_readme_keeps_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    assert "make run\n" in blocks and "make test\n" in blocks
    assert "(docs/index.md)" in readme


def test_readme_shows_the_dashboard_once_there_is_a_screenshot() -> None:
    shots = sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.png"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    if shots:
        assert linked, f"README shows none of {shots}"
    assert all(link in shots for link in linked), linked


def test_mkdocs_nav_names_existing_pages() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = re.findall(r"^\s+- [^:]+: (\S+\.md)$", config, flags=re.M)
    assert "index.md" in pages and "ci.md" in pages
    assert [p for p in pages if not (DOCS / p).exists()] == []

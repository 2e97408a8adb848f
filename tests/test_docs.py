"""The README and the manual in docs/: every relative link and #anchor resolves, and the README stays short."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 220

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lowercased, punctuation other than hyphens and underscores removed,
    each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"(\*\*|__|\*)", "", text)  # emphasis markers (an underscore inside a word is text)
    kept = "".join(c for c in text.lower()
                   if c in " -_" or unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Mn")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of ``page``: its headings' slugs (a repeated one gets -1, -2, ... as on GitHub) and HTML ids."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in _prose_lines(page.read_text()):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line))
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image on ``page``, outside code."""
    found = []
    for number, line in _prose_lines(page.read_text()):
        line = CODE_SPAN.sub("", line)
        found += [(number, target) for target in LINK.findall(line)]
        reference = REFERENCE.match(line)
        if reference:
            found.append((number, reference.group(1)))
    return found


def broken_links(page: Path) -> list[str]:
    """What is wrong with each relative link of ``page``: a missing file, or an anchor no heading has."""
    problems = []
    for number, target in links(page):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: no such file {resolved}")
        elif anchor and resolved.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not a Markdown page")
        elif anchor and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading with anchor #{anchor} in {resolved.name}")
    return problems


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


def test_readme_is_short():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; keep it to {README_MAX_LINES} and move the rest into docs/"


def test_the_manual_has_its_pages():
    for name in ("operator", "real_robot", "nodes", "data", "learners", "benchmarks", "network", "sim"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name


def test_slugs_follow_github():
    assert slug("Record encodings (on `std_msgs/String`, JSON, versioned)") == "record-encodings-on-std_msgsstring-json-versioned"
    assert slug("`iil-robot replay BAG_OR_DIR...`") == "iil-robot-replay-bag_or_dir"
    assert slug("1. SpaceMouse access") == "1-spacemouse-access"
    assert slug("Why RLIF learns push slowly: the critics") == "why-rlif-learns-push-slowly-the-critics"
    assert slug("Help requests (ThriftyDAgger)") == "help-requests-thriftydagger"


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Here\n\n## Here\n\n"
        "[fine](other.md) [fine](other.md#a-section) [fine](#here) [fine](#here-1) [fine](https://example.org/x.md)\n"
        "`[in code](missing.md)`\n\n```\n[in a block](missing.md)\n```\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) [no anchor here](#nowhere) ![img](gone.png)\n"
        "[ref]: also-missing.md\n"
    )
    problems = broken_links(page)
    assert len(problems) == 5, problems
    assert any("missing.md: no such file" in p for p in problems)
    assert any("other.md#nowhere: no heading" in p for p in problems)
    assert any("#nowhere: no heading" in p and "other" not in p for p in problems)
    assert any("gone.png" in p for p in problems) and any("also-missing.md" in p for p in problems)


CODE_REFERENCE = re.compile(r"(docs/[\w./-]+\.md|README(?:\.md|'s)?)(?:[,:]?\s*\(?\"([^\"]+)\")?")


def code_files() -> list[Path]:
    files = [ROOT / "iil", *(ROOT / ".ci").glob("*"), *(ROOT / "docker").glob("*"), *(ROOT / "launch").glob("*.py"),
             *(ROOT / "udev").glob("*")]
    files += [p for p in (ROOT / "iil_robot").rglob("*") if p.suffix in (".py", ".yaml")]
    files += [p for p in (ROOT / "tests").rglob("*.py") if p.name not in ("test_docs.py", "gen_node_docs.py")]
    return [p for p in files if p.is_file()]


def reference_problems(path: Path) -> list[str]:
    """Mentions of a docs page (or the README) in ``path`` whose page, or quoted section heading, does not exist."""
    problems = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        for target, section in CODE_REFERENCE.findall(line):
            page = ROOT / ("README.md" if target.startswith("README") else target)
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            if not page.is_file():
                problems.append(f"{where}: no such page")
            elif section:
                headings = [HEADING.match(l).group(2).lower() for _, l in _prose_lines(page.read_text()) if HEADING.match(l)]
                if not any(CODE_SPAN.sub(lambda m: m.group(2), h).startswith(section.lower()) for h in headings):
                    problems.append(f"{where} \"{section}\": no such section")
    return problems


def test_code_points_at_pages_and_sections_that_exist():
    """Comments and docstrings that send the reader to the manual (`docs/data.md "Labelling"`) stay true."""
    assert [p for path in code_files() for p in reference_problems(path)] == []

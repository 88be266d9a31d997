"""The docs a newcomer reads: a short README that starts with the two commands, and guides whose
links all lead somewhere inside the project."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "assets").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(path: Path) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fence = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            lines.append(line)
    return lines


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation but - and _ dropped, spaces to -."""
    out, seen = set(), {}
    for line in _prose(path):
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            out.add(slug if n == 0 else f"{slug}-{n}")
            seen[slug] = n + 1
    return out


def test_the_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines: move guides to docs/"
    block = lines[lines.index("```sh") + 1:lines.index("```")]
    assert lines.index("```sh") <= 2 and [line.split()[0:2] for line in block] == [["./lapses", "run"], ["./lapses", "test"]]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_to_a_page_and_heading_inside_the_project(page):
    for target in LINK.findall("\n".join(_prose(page))):
        if re.match(r"^[a-z]+:", target):
            continue                                   # http:, mailto:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.is_relative_to(ROOT) and dest.exists(), f"{page.name}: {target} leads nowhere in the project"
        if anchor:
            assert dest.suffix == ".md" and anchor in _anchors(dest), f"{page.name}: {target}: no such heading"


def test_the_code_cites_the_projects_own_design():
    for path in [*ROOT.glob("installation/**/*.py"), *ROOT.glob("models/**/*.py"), *ROOT.glob("training/**/*.py")]:
        text = path.read_text()
        assert "shared/" not in text, f"{path.relative_to(ROOT)} cites a file outside the project"
        for m in re.finditer(r"[\w/.]*design\.md", text):
            assert m.group(0).endswith("docs/design.md"), f"{path.relative_to(ROOT)} cites {m.group(0)}"


def test_each_symptom_is_described_as_its_module_describes_it():
    """A symptom's module holds its name, level, default target and description; settings.yaml's
    `symptoms:` block and the symptoms' page say the same."""
    from installation.symptoms import SYMPTOMS
    yaml_lines = (ROOT / "settings.yaml").read_text().splitlines()
    page = (ROOT / "docs" / "symptoms.md").read_text().splitlines()
    for name, s in SYMPTOMS.items():
        line = [x for x in yaml_lines if re.match(rf"^  {name}:\s+\{{enabled", x)]
        assert line and line[0].split("#", 1)[1].strip() == f"{s.level}: {s.description}", name
        row = [x for x in page if x.startswith(f"| {name} |")]
        assert row, f"docs/symptoms.md has no row for {name}"
        level, target, seen = (c.strip() for c in row[0].split("|")[2:5])
        assert level.split()[0] == s.level and target.strip("`") == (s.default_target or "—"), name
        assert seen.startswith(s.description), name
    assert len([x for x in page if re.match(r"^\| [a-z_]+ \|", x) and not x.startswith("| symptom |")]) == len(SYMPTOMS)

"""settings.yaml documents each setting's allowed range in the comment above it; the schema
(installation/settings.py) holds the range the loader enforces. They must say the same: every
ranged number's comment states its range, and it is the schema's."""
import dataclasses
import re
import typing
from pathlib import Path

from installation.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"-?\d+(?:\.\d+)?"
# "0..1000", "0 (none) .. 1 (heavy)", "2..16384"
RANGE = re.compile(rf"({NUMBER})\s*(?:\([^)]*\)\s*)?\.\.\s*({NUMBER})")


def _comments() -> dict[str, str]:
    """Each block key path of settings.yaml -> the comment lines just above it (joined)."""
    out, stack, block = {}, [], []
    for line in (ROOT / "settings.yaml").read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            block = []
            continue
        if stripped.startswith("#"):
            block.append(stripped.lstrip("# "))
            continue
        m = re.match(r"^(\s*)([A-Za-z_][\w]*):", line)
        if m:
            depth = len(m.group(1)) // 2
            stack = stack[:depth] + [m.group(2)]
            out[".".join(stack)] = " ".join(block)
        block = []
    return out


def _ranged(tp, prefix: str = ""):
    """(key path, lo, hi) of every number in the schema with both bounds."""
    hints = typing.get_type_hints(tp)
    for f in dataclasses.fields(tp):
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _ranged(hints[f.name], path + ".")
        elif "lo" in f.metadata and "hi" in f.metadata and hints[f.name] in (int, float):
            yield path, f.metadata["lo"], f.metadata["hi"]


def test_every_ranged_setting_states_the_schemas_range_in_settings_yaml():
    comments = _comments()
    ranged = list(_ranged(Settings))
    assert len(ranged) > 20
    wrong = []
    for path, lo, hi in ranged:
        if path not in comments:
            continue                    # not a block key in the file (inside a flow mapping): nothing to disagree
        stated = [(float(a), float(b)) for a, b in RANGE.findall(comments[path])]
        if (float(lo), float(hi)) not in stated:
            wrong.append(f"{path}: the schema allows {lo}..{hi}; settings.yaml says {stated or 'no range'}")
    assert not wrong, "\n".join(wrong)

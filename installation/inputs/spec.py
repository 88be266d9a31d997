"""The small languages of the mapping table: MIDI specs ("cc 7", "ch 2 note 36", "cc14 3",
"pitchbend"), OSC addresses, MIDI port patterns and "host:port".

They are parsed here, once, with no device library involved, so that the settings (through
inputs/rules.py) can reject a bad row at start (naming its key) and the MIDI and OSC threads only
ever see parsed values.
Errors are ValueErrors worded for the person editing settings.yaml; the caller adds the key path.
"""
from __future__ import annotations

import re
from typing import NamedTuple

MIDI_HELP = ("'cc N' (0..127), 'cc14 N' (a 14-bit pair: MSB on cc N, LSB on cc N+32; N 0..31), 'note N' "
             "(0..127) or 'pitchbend', optionally after 'ch C' (1..16), e.g. 'ch 2 cc 7'; '' = none")
OSC_HELP = "an address starting with '/', without spaces or the pattern characters *?[]{}#, e.g. /decay"
PORTS_HELP = ("port name patterns separated by commas ('*' matches anything, case ignored), e.g. 'nanoKONTROL*', "
              "'*' for every port, '' for none")

RESERVED_OSC = ("/scene",)                   # recalls a scene by name: /scene storm
RESERVED_OSC_PREFIXES = ("/state/",)         # what the piece sends out


class MidiSpec(NamedTuple):
    kind: str                 # "cc", "cc14", "note", "pitchbend"
    number: int               # controller or note number; 0 for pitchbend
    channel: int | None       # 1..16, None = any channel

    @property
    def continuous(self) -> bool:
        return self.kind in ("cc", "cc14", "pitchbend")

    def footprint(self) -> set[tuple[int, str, int]]:
        """The (channel or 0 for any, kind, number) slots it listens to; a cc14 pair holds two."""
        ch = self.channel or 0
        if self.kind == "cc14":
            return {(ch, "cc", self.number), (ch, "cc", self.number + 32)}
        return {(ch, self.kind, self.number)}

    def overlaps(self, other: "MidiSpec") -> bool:
        """Whether two specs hear the same controller (a spec with no channel hears every channel)."""
        return any(ka == kb and na == nb and (ca == cb or ca == 0 or cb == 0)
                   for ca, ka, na in self.footprint() for cb, kb, nb in other.footprint())

    def text(self) -> str:
        body = "pitchbend" if self.kind == "pitchbend" else f"{self.kind} {self.number}"
        return body if self.channel is None else f"ch {self.channel} {body}"


_MIDI = re.compile(r"^(?:ch\s*(\d+)\s+)?(?:(cc14|cc|note)\s*(\d+)|(pitchbend))$")


def parse_midi(text: str) -> MidiSpec | None:
    """'ch 2 cc 7' -> MidiSpec('cc', 7, 2); '' -> None. Raises ValueError for anything else."""
    t = " ".join(str(text).strip().lower().split())
    if not t:
        return None
    m = _MIDI.match(t)
    if not m:
        raise ValueError(f"{text!r} is not a MIDI control; allowed: {MIDI_HELP}")
    channel = int(m.group(1)) if m.group(1) else None
    if channel is not None and not 1 <= channel <= 16:
        raise ValueError(f"{text!r} has channel {channel}; allowed: channels 1..16 ({MIDI_HELP})")
    if m.group(4):
        return MidiSpec("pitchbend", 0, channel)
    kind, number = m.group(2), int(m.group(3))
    top = 31 if kind == "cc14" else 127
    if not 0 <= number <= top:
        raise ValueError(f"{text!r}: {kind} number {number} is out of range; allowed: 0..{top} ({MIDI_HELP})")
    return MidiSpec(kind, number, channel)


def check_osc_address(text: str) -> str:
    """The address itself, or a ValueError. '' is allowed (no OSC for this row)."""
    t = str(text)
    if not t:
        return t
    if not t.startswith("/") or len(t) < 2 or any(c in t for c in " \t*?[]{}#,"):
        raise ValueError(f"{t!r} is not an OSC address; allowed: {OSC_HELP}")
    if t in RESERVED_OSC or t.startswith(RESERVED_OSC_PREFIXES):
        raise ValueError(f"{t!r} is reserved (/scene recalls scenes, /state/... is what the piece sends out); "
                         f"allowed: {OSC_HELP}")
    return t


def port_patterns(text: str) -> tuple[str, ...]:
    """'nano*, Launch*' -> ('nano*', 'launch*'); '' -> () (no ports). Raises ValueError."""
    t = str(text).strip()
    if not t:
        return ()
    parts = tuple(p.strip().lower() for p in t.split(","))
    for p in parts:
        if not p:
            raise ValueError(f"{text!r} has an empty pattern between commas; allowed: {PORTS_HELP}")
        if p.count("[") != p.count("]"):
            raise ValueError(f"{text!r}: unbalanced [ ] in {p!r}; allowed: {PORTS_HELP}")
    return parts


def port_matches(name: str, patterns: tuple[str, ...]) -> bool:
    from fnmatch import fnmatchcase
    n = name.lower()
    return any(fnmatchcase(n, p) or (not any(c in p for c in "*?[") and p in n) for p in patterns)


def parse_host_port(text: str, what: str = "host:port") -> tuple[str, int] | None:
    """'127.0.0.1:9001' -> ('127.0.0.1', 9001); '' -> None. Raises ValueError."""
    t = str(text).strip()
    if not t:
        return None
    host, sep, port = t.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535 or " " in host:
        raise ValueError(f"{text!r} is not a {what}; allowed: host:port with a port 1..65535, e.g. "
                         f"127.0.0.1:9001, or '' for none")
    return host, int(port)

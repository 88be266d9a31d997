"""Key names and key combinations, as the event loop sees them.

Why it exists: settings.yaml names keys in words ('space', 'f11', 'ctrl+shift+q'); a typo would
leave an action dead in front of visitors, so the settings check each name here, at start, with
the same pygame names the loop compares against. Errors are ValueErrors worded for the person
editing settings.yaml; the settings add the key path.
"""
from __future__ import annotations

import os
import warnings

KEY_NAMES_ALLOWED = "a key name as pygame writes it, such as 'space', 'r', 'f11', '=', 'page up'"
COMBO_ALLOWED = "modifiers (ctrl, shift, alt) and one key joined by +, e.g. ctrl+shift+q"


def split_combo(text: str) -> tuple[str, frozenset[str]]:
    """"ctrl+shift+q" -> ("q", {"ctrl", "shift"}); ValueError for no key or an unknown modifier."""
    parts = [p.strip().lower() for p in text.split("+") if p.strip()]
    mods = frozenset(parts[:-1])
    if not parts or mods - {"ctrl", "shift", "alt"}:
        raise ValueError(f"{text!r}: write {COMBO_ALLOWED}")
    return parts[-1], mods


def is_key_name(key: str) -> bool:
    """A key the event loop can ever see: pygame knows the name and writes it back the same way
    (the loop compares pygame.key.name of each key pressed)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    with warnings.catch_warnings():          # names need no display: pygame warns before init all the same
        warnings.simplefilter("ignore")
        try:
            return pygame.key.name(pygame.key.key_code(key)).lower() == key
        except ValueError:
            return False

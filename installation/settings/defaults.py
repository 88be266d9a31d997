"""The piece's default data: the course's curves, the mapping table, the scenes, the scales.

Why it exists: the schema (installation/settings/__init__.py) is a table of fields with their
ranges; the larger defaults — one curve per symptom, a MIDI/OSC binding per parameter and
action, the four scenes — are data, kept here as plain mappings that the schema turns into its
frozen settings. They equal settings.yaml (tests/test_settings_file.py holds the two together).
"""
from __future__ import annotations

from installation.symptoms import SYMPTOM_NAMES

# the scales the soundscape may use: semitones above the root
SCALES: dict[str, tuple[int, ...]] = {
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "pentatonic": (0, 3, 5, 7, 10),
}

CURVES: dict[str, tuple] = {
    # the stages' story (course.STAGES) on the bundled models: the verbatim detail goes first, alone,
    # then every memory recognisable to 0.7, glimpses while severe, gone at 1; weight and activation
    # damage holds back until 0.92
    "detail_loss":     ((0.0, 0.0), (0.02, 0.0), (0.12, 0.45), (0.2, 0.8), (0.3, 1.0)),
    "fading":          ((0.0, 0.0), (0.15, 0.0), (0.33, 0.15), (0.5, 0.25), (0.75, 0.4), (0.9, 0.55), (1.0, 0.96)),
    "static":          ((0.0, 0.0), (0.15, 0.0), (0.33, 0.04), (0.7, 0.1), (0.92, 0.15), (1.0, 0.35)),
    "hesitation":      ((0.0, 0.0), (0.1, 0.1), (0.33, 0.2), (0.7, 0.5), (1.0, 0.7)),
    "synapse_loss":    ((0.0, 0.0), (0.15, 0.0), (0.33, 0.03), (0.6, 0.07), (0.92, 0.12), (1.0, 0.35)),
    # the decline: each arrives later
    "forgetting":      ((0.0, 0.0), (0.4, 0.0), (0.7, 0.2), (0.92, 0.4), (1.0, 0.8)),
    "regression":      ((0.0, 0.0), (0.3, 0.0), (0.6, 0.06), (0.92, 0.12), (1.0, 0.4)),
    "plaques":         ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (0.92, 0.5), (1.0, 0.9)),
    "lapses":          ((0.0, 0.0), (0.33, 0.0), (0.6, 0.25), (0.85, 0.65), (1.0, 0.95)),
    "neuron_death":    ((0.0, 0.0), (0.45, 0.0), (0.75, 0.04), (0.92, 0.07), (1.0, 0.3)),
    "confusion":       ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (0.92, 0.45), (1.0, 0.7)),
    "perseveration":   ((0.0, 0.0), (0.35, 0.0), (0.65, 0.4), (1.0, 0.8)),
    "feature_dropout": ((0.0, 0.0), (0.5, 0.0), (0.92, 0.04), (1.0, 0.2)),
    "weight_noise":    ((0.0, 0.0), (0.45, 0.0), (0.92, 0.08), (1.0, 0.35)),
    "tangles":         ((0.0, 0.0), (0.5, 0.0), (0.92, 0.12), (1.0, 0.4)),
    "precision_loss":  ((0.0, 0.0), (0.5, 0.0), (0.92, 0.3), (1.0, 0.7)),
    "bit_rot":         ((0.0, 0.0), (0.8, 0.0), (1.0, 0.25)),  # exponent flips are violent: late and light
    # style-based generators only (a DCGAN has no mapping network or noise inputs: no effect there)
    "misidentification": ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (1.0, 0.6)),
    "noise_swell":     ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (1.0, 0.7)),
}


# the MIDI spec leaves controllers 102..119 undefined: one per symptom, by name (a symptom added
# later gets OSC only until someone maps it)
SYMPTOM_CC: dict[str, int] = {
    "synapse_loss": 102, "neuron_death": 103, "weight_noise": 104, "precision_loss": 105, "bit_rot": 106,
    "regression": 107, "feature_dropout": 108, "plaques": 109, "tangles": 110, "static": 111, "forgetting": 112,
    "confusion": 113, "perseveration": 114, "hesitation": 115, "lapses": 116, "fading": 117,
    "misidentification": 118, "noise_swell": 119,
    "detail_loss": 85,      # 120..127 are channel mode messages; 85..87 are undefined too
}

BINDINGS: dict[str, dict] = {
    "decay": dict(midi="cc 1", osc="/decay", lo=-1.0, hi=1.0, smoothing_s=0.15),
    "speed": dict(midi="pitchbend", osc="/walk/speed", lo=0.25, hi=4.0, curve="exp", smoothing_s=0.2),
    "progress": dict(midi="cc14 3", osc="/course/progress", smoothing_s=0.5),
    **{name: dict(midi=f"cc {SYMPTOM_CC[name]}" if name in SYMPTOM_CC else "", osc=f"/symptom/{name}",
                  smoothing_s=0.1) for name in SYMPTOM_NAMES},
    "pause": dict(midi="note 36", osc="/pause"),
    "revive": dict(midi="note 37", osc="/revive"),
    "rebirth": dict(midi="note 38", osc="/rebirth"),
    "lucid": dict(midi="note 39", osc="/lucid"),
    "release": dict(midi="note 40", osc="/release"),
    "course_back": dict(midi="note 41", osc="/course/back"),
    "course_forward": dict(midi="note 42", osc="/course/forward"),
    "decay_down": dict(midi="note 43", osc="/decay/down"),
    "decay_up": dict(midi="note 44", osc="/decay/up"),
    "slower": dict(midi="note 45", osc="/walk/slower"),
    "faster": dict(midi="note 46", osc="/walk/faster"),
    "visit": dict(osc="/visit", presence="arrive"),
    "hud": dict(osc="/hud"),
    "screenshot": dict(osc="/screenshot"),
    "learn": dict(), "select_prev": dict(), "select_next": dict(),
}

SCENES: dict[str, dict] = {
    "course": dict(key="f1", midi="note 48", fade_s=3.0, release=True, values={"decay": 0.0, "speed": 1.0}),
    "remember": dict(key="f2", midi="note 49", fade_s=6.0, release=True, values={"decay": -0.8, "speed": 0.6}),
    "drift": dict(key="f3", midi="note 50", fade_s=4.0, values={"speed": 0.5, "hesitation": 0.6, "confusion": 0.5}),
    "storm": dict(key="f4", midi="note 51", fade_s=1.5, values={"speed": 2.0, "static": 0.8, "lapses": 0.5}),
}

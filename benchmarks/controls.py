"""A performer's controls along the story, per model: the decay knob and each symptom's fader.

    .venv/bin/python benchmarks/controls.py [MODEL ...]      (default: both bundled models)

The knob: memories still recognised (of eight, first to last, blackouts left out) and their mean SSIM
against the healthy pictures, as a performer turns `decay` up from the start of the model's
calibrated course. The faders: what each symptom alone does at fader 0.1 / 0.25 / 0.5 / 0.75 / 1,
with the plain fader (position = intensity) and with the model's fader calibration side by side:
SSIM against healthy for a symptom that changes a still picture; for lapses the share of time dark,
for hesitation the share of the walk's motion lost, for perseveration the share of visits repeated
(installation/faders.py); then the change over its value at full intensity, at 0.25 / 0.5 / 0.75
(the bar: within 0.15 of the position).
"""
from __future__ import annotations

import sys

from common import ROOT, headless, run_main

headless()

from installation import faders  # noqa: E402
from installation.calibration import course_for
from installation.visitor import healthy_pictures, memory_latents, seen  # noqa: E402
from installation.course import CourseState, Overrides  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.settings import settings_from_dict  # noqa: E402
from installation.symptoms import SYMPTOMS  # noqa: E402

KNOB = (0.1, 0.2, 0.3, 0.45, 0.5, 0.6, 0.8)
FADER = (0.1, 0.25, 0.5, 0.75, 1.0)
BAR = 0.15


def knob_row(engine, course) -> list[str]:
    z = memory_latents(engine)
    healthy = healthy_pictures(engine, z, 1)
    cells = []
    for x in KNOB:
        state = CourseState(elapsed_s=0.0, seed=1, overrides=Overrides(decay=x))
        recognised, _, similarity = seen(engine, z, healthy, 1, course.sample(state).intensities)
        cells.append(f"{round(recognised * len(z))}/{len(z)}, {similarity:.2f}")
    return cells


def fader_rows(engine, cal) -> list[str]:
    probe = faders.FaderProbe(engine)
    rows = []
    for name in SYMPTOMS:
        full = probe.change(name, 1.0)
        if full < faders.QUIET:
            rows.append(f"  {name:<19} changes nothing on this model")
            continue
        shown = (lambda c: c) if name in faders.BY_TIME else (lambda c: 1.0 - c)
        plain = [probe.change(name, f) for f in FADER]
        drawn = [probe.change(name, cal.intensity(name, f)) if cal else float("nan") for f in FADER]
        spread = [c / full for c in drawn[1:4]]
        met = all(abs(s - f) <= BAR for s, f in zip(spread, FADER[1:4]))
        plain_spread = [c / full for c in plain[1:4]]
        rows.append(f"  {name:<19}" + " ".join(f"{shown(c):5.2f}" for c in plain) + "  |"
                    + " ".join(f"{shown(c):5.2f}" for c in drawn) + "  | "
                    + "/".join(f"{s:.2f}" for s in plain_spread) + " -> " + "/".join(f"{s:.2f}" for s in spread)
                    + ("  ok" if met else "  OFF"))
    return rows


def main() -> None:
    models = sys.argv[1:] or [str(ROOT / "assets" / "memories.safetensors"), str(ROOT / "assets" / "brain.safetensors")]
    for m in models:
        s = settings_from_dict({}, ["model.device=cpu", f"model.path={m}", "course.lucid.enabled=false"])
        engine = Engine.from_settings(s, 64, 64)
        course = course_for(s, engine.model.meta)
        print(f"\n{m.split('/')[-1]}")
        print(f"  {'decay knob':<19}" + "".join(f"{'+' + str(x):>11}" for x in KNOB))
        print(f"  {'recognised, SSIM':<19}" + "".join(f"{c:>11}" for c in knob_row(engine, course)))
        print(f"  {'fader':<19}" + " ".join(f"{f:5g}" for f in FADER) + "  |"
              + " ".join(f"{f:5g}" for f in FADER) + "  | change/full at 0.25/0.5/0.75")
        print(f"  {'':<19}{'plain fader':<30}|{'calibrated':<31}| plain -> calibrated")
        for line in fader_rows(engine, course.faders):
            print(line)
        engine.close()


if __name__ == "__main__":
    raise SystemExit(run_main(main))

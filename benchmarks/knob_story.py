"""The decay knob along the story: memories still recognised, and mean SSIM against the healthy
pictures, as a performer turns `decay` up from the start of the course.

    .venv/bin/python benchmarks/knob_story.py [MODEL ...]      (default: both bundled models)

Eight memories (first to last), blackouts left out, the model's calibrated course, progress 0.
"""
from __future__ import annotations

import sys

import numpy as np

from common import ROOT, headless

headless()

from installation.calibration import course_for  # noqa: E402
from installation.course import CourseState, Overrides  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.settings import settings_from_dict  # noqa: E402
from installation.sheet import sheet_latents, ssim  # noqa: E402
from installation.state import FrameState  # noqa: E402

KNOB = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8)


def row(model: str) -> list[str]:
    s = settings_from_dict({}, ["model.device=cpu", f"model.path={model}", "course.lucid.enabled=false"])
    engine = Engine.from_settings(s, 64, 64)
    course = course_for(s, engine.model.meta)
    z = sheet_latents(engine, 8, 1, spread=True)
    healthy = engine.small_frames(z, FrameState(t=3.0, seed=1))
    cells = []
    for x in KNOB:
        state = CourseState(elapsed_s=0.0, seed=1, overrides=Overrides(decay=x))
        intensities = {**course.sample(state).intensities, "lapses": 0.0}
        frames = engine.small_frames(z, FrameState(t=3.0, seed=1, intensities=intensities))
        nearest = [int(np.argmax([ssim(f, h) for h in healthy])) for f in frames]
        recognised = int(np.sum(np.array(nearest) == np.arange(len(frames))))
        cells.append(f"{recognised}/{len(frames)}, {np.mean([ssim(f, h) for f, h in zip(frames, healthy)]):.2f}")
    engine.close()
    return cells


def main() -> None:
    models = sys.argv[1:] or [str(ROOT / "assets" / "memories.safetensors"), str(ROOT / "assets" / "brain.safetensors")]
    print(f"{'model':<28}" + "".join(f"{'+' + str(x):>14}" for x in KNOB))
    for m in models:
        print(f"{m.split('/')[-1]:<28}" + "".join(f"{c:>14}" for c in row(m)))


if __name__ == "__main__":
    main()

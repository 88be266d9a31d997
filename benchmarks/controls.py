"""The decay knob along the story: memories still recognised, and mean SSIM against the healthy
pictures, as a performer turns `decay` up from the start of the course.

    .venv/bin/python benchmarks/knob_story.py [MODEL ...]      (default: both bundled models)

Eight memories (first to last), blackouts left out, the model's calibrated course, progress 0.
"""
from __future__ import annotations

import sys

from common import ROOT, headless

headless()

from installation.calibration import course_for, healthy_pictures, memory_latents, seen  # noqa: E402
from installation.course import CourseState, Overrides  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.settings import settings_from_dict  # noqa: E402

KNOB = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8)


def row(model: str) -> list[str]:
    s = settings_from_dict({}, ["model.device=cpu", f"model.path={model}", "course.lucid.enabled=false"])
    engine = Engine.from_settings(s, 64, 64)
    course = course_for(s, engine.model.meta)
    z = memory_latents(engine)
    healthy = healthy_pictures(engine, z, 1)
    cells = []
    for x in KNOB:
        state = CourseState(elapsed_s=0.0, seed=1, overrides=Overrides(decay=x))
        recognised, _, similarity = seen(engine, z, healthy, 1, course.sample(state).intensities)
        cells.append(f"{round(recognised * len(z))}/{len(z)}, {similarity:.2f}")
    engine.close()
    return cells


def main() -> None:
    models = sys.argv[1:] or [str(ROOT / "assets" / "memories.safetensors"), str(ROOT / "assets" / "brain.safetensors")]
    print(f"{'model':<28}" + "".join(f"{'+' + str(x):>14}" for x in KNOB))
    for m in models:
        print(f"{m.split('/')[-1]:<28}" + "".join(f"{c:>14}" for c in row(m)))


if __name__ == "__main__":
    main()

"""The benchmarks are commands too: a missing model or data folder is one line and exit code 2."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("script, args", [
    ("render_speed", ["--model", "{missing}"]),
    ("live_speed", ["--model", "{missing}"]),
    ("run", ["--model", "{missing}"]),
    ("detail_quality", ["--model", "{missing}"]),
    ("detail_quality", ["--data", "{folder}"]),
    ("controls", ["{missing}"]),
    ("d_probe", ["--model", "{missing}"]),
])
def test_a_benchmark_names_a_missing_model_or_folder_without_a_traceback(tmp_path, script, args):
    missing, folder = tmp_path / "nope.safetensors", tmp_path / "no-such-folder"
    argv = [a.format(missing=missing, folder=folder) for a in args]
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *argv],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"})
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    named = str(folder) if "{folder}" in args else str(missing)
    assert named in r.stderr and r.stderr.strip().startswith("error:")

"""The benchmarks are commands too: a missing model or data folder is one line and exit code 2."""
import pytest
from conftest import run_benchmark


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
    r = run_benchmark(script, *argv, cwd=tmp_path, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    named = str(folder) if "{folder}" in args else str(missing)
    assert named in r.stderr and r.stderr.strip().startswith("error:")

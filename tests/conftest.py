"""Shared fixtures: tiny models and data on the CPU, no display, no audio device."""
import os
import subprocess
import sys

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings as hypothesis_settings

torch.set_num_threads(min(2, torch.get_num_threads()))

# The property-based tests (test_properties_*.py): a small fixed budget (about 25 s for all three
# modules on two cores), so that CI is quick and
# every run tries the same examples (derandomize; no example database written into the checkout).
# HYPOTHESIS_PROFILE=hunt tries many more, with fresh random examples each run, to look for new bugs.
hypothesis_settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, database=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile("hunt", max_examples=1500, deadline=None, database=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _has_cuda() -> bool:
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def default_osc_port_taken():
    """The settings' default OSC port (9000) is held for the whole run, as another program on the
    machine may hold it: a test that forgot inputs.osc.port=0 fails here every time, not once in
    a while on a busy machine."""
    import socket
    from installation.settings import Settings
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((Settings().inputs.osc.host, Settings().inputs.osc.port))
    except OSError:
        pass                                     # already held by something else: the same test
    yield
    sock.close()


@pytest.fixture(autouse=True)
def thread_pools_put_back():
    """Each test leaves torch's and OpenCV's thread pools as it found them: a render inside a test
    gives the generator half the cores (render.share_cores_with_encoder), and a model a later test
    trains (own_memories) would otherwise be trained on one thread or two depending on which tests
    ran first — a different model, as float sums run in another order."""
    import cv2
    import torch
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if cv2.getNumThreads() != cv_threads:
        cv2.setNumThreads(cv_threads)


TINY = dict(image_size=32, channels=3, latent_size=16, width=4, d_width=4)


@pytest.fixture
def tiny_cfg():
    from models import DCGANConfig
    return DCGANConfig(**TINY)


@pytest.fixture
def image_folder(tmp_path):
    """Six small RGB PNGs with distinct content."""
    import imageio.v3 as iio
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = np.zeros((40, 48, 3), np.uint8)
        img[..., i % 3] = 200
        img[5 + i:20 + i, 5:30] = rng.integers(0, 255, 3)
        iio.imwrite(folder / f"img{i}.png", img)
    (folder / "LICENCE.txt").write_text("CC0 test images\n")
    return folder


def sample_span(blocks, lo: int, hi: int) -> np.ndarray:
    """The sound samples at positions [lo, hi) of (first sample, float [n, 2]) blocks, whichever
    blocks hold them; NaN where none does."""
    out = np.full((hi - lo, 2), np.nan, np.float32)
    for start, samples in blocks:
        a, b = max(lo, start), min(hi, start + len(samples))
        if a < b:
            out[a - lo:b - lo] = samples[a - start:b - start]
    return out


def make_tiny_checkpoint(path, seed: int = 0, anchors: int = 4, snapshots: int = 2, nan: bool = False):
    """A random-weight tiny generator with anchors and snapshots, saved as a real checkpoint
    (`nan`: one weight NaN, as a run that diverged saves it, digests and all)."""
    from models import DCGANConfig, GeneratorMeta, save_generator
    from models.checkpoint import Anchor
    from models.dcgan import Generator
    torch.manual_seed(seed)
    cfg = DCGANConfig(**TINY)
    g = Generator(cfg)
    if nan:
        with torch.no_grad():
            next(iter(g.parameters())).view(-1)[0] = float("nan")
    snaps = []
    for _ in range(snapshots):
        snaps.append({k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
                      for k, v in g.state_dict().items()})
    zs = torch.randn(anchors, cfg.latent_size)
    meta = GeneratorMeta("dcgan", cfg, step=100, dataset="test", dataset_licence="CC0",
                         anchors=[Anchor(f"mem{i}", z.tolist()) for i, z in enumerate(zs)],
                         snapshot_steps=[25 * (i + 1) for i in range(snapshots)])
    save_generator(path, g, meta, snaps)
    return path


@pytest.fixture
def tiny_checkpoint(tmp_path):
    return make_tiny_checkpoint(tmp_path / "tiny.safetensors")


OWN_MEMORIES = ["model.image_size=32", "model.width=8", "model.d_width=8", "model.latent_size=32", "batch_size=16",
                "anchor_steps=60", "anchor_tune_steps=60", "eval_samples=32", "snapshots=2"]


@pytest.fixture(scope="session")
def own_memories(tmp_path_factory):
    """A small memories model the suite trains itself (lapses-memory at 32 px, 150 steps, ~15 s) on
    eight pictures it makes; its photographs are in the folder beside it (`memories`)."""
    import imageio.v3 as iio
    from training.data import load_folder
    from training.presets import build_config
    from training.run import train
    root = tmp_path_factory.mktemp("own")
    folder = root / "memories"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    shapes = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1, np.abs(xx - yy) < 0.2, (xx > 0.3) & (xx < 0.7),
              (yy > 0.2) & (yy < 0.5))
    for i in range(8):
        img = np.zeros((48, 48, 3), np.float32) + rng.random(3) * 0.5
        img[shapes[i % 4]] = rng.random(3)
        iio.imwrite(folder / f"m{i}.png", (img * 255).astype(np.uint8))
    cfg = build_config("lapses-memory", [*OWN_MEMORIES, "steps=150", "sample_every=100000", "checkpoint_every=100000"])
    return train(cfg, load_folder(folder, 32, 3), root / "run", "cpu", quiet=True, log=lambda *a, **k: None,
                 data_folder=folder)


def run_main(package: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """`python -m <package> ARGS` run in this process: the command's own main(argv), its exit code
    (a return, or argparse's SystemExit) and what it printed, as subprocess.run would give them —
    without starting Python and importing torch again for each call (about 1.5 s on two cores).
    Use a real process only where the process is what is tested (signals, the service, exit on
    Ctrl-C). An exception the command let escape fails the test here, as a traceback would there.
    What a command changes for the whole process (torch's and OpenCV's thread pools, the SIGTERM
    handler, the working folder, logging) is put back afterwards."""
    import contextlib
    import importlib
    import io
    import logging
    import signal
    import cv2
    main = importlib.import_module(f"{package}.cli").main
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(err)                 # where basicConfig would send it in a fresh process
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    saved = (torch.get_num_threads(), cv2.getNumThreads(), signal.getsignal(signal.SIGTERM), os.getcwd(), root.level)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if not isinstance(e.code, (int, type(None))):
                    print(e.code, file=sys.stderr)
    finally:
        root.removeHandler(handler)
        threads, cv_threads, term, where, level = saved
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
        signal.signal(signal.SIGTERM, term)
        os.chdir(where)
        root.setLevel(level)
    return subprocess.CompletedProcess([sys.executable, "-m", package, *argv], code or 0, out.getvalue(), err.getvalue())


def run_benchmark(script: str, *args, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python benchmarks/SCRIPT.py ARGS` in a process of its own, as a person runs it from a bare
    shell (no display, no sound card, only the system PATH): its exit code and what it printed."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, os.path.join(root, "benchmarks", f"{script}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"})

"""Generators build from their config, and checkpoints load strictly and safely."""
import pickle
import re
import struct

import pytest
import torch

from models.dcgan import ResizeConv2d
from models import (Anchor, CheckpointError, DCGANConfig, Discriminator, Generator, GeneratorMeta,
                    load_generator, load_resume, save_generator, save_resume)


@pytest.mark.parametrize("size,channels,kernel,upsample,norm", [
    (32, 1, 4, "transposed", "batch"), (64, 3, 3, "transposed", "pixel"), (32, 3, 5, "nearest", "none"),
    (64, 1, 4, "bilinear", "pixel")])
def test_generator_and_discriminator_shapes(size, channels, kernel, upsample, norm):
    cfg = DCGANConfig(image_size=size, channels=channels, latent_size=8, width=4, d_width=4,
                      kernel_size=kernel, upsample=upsample, g_norm=norm, d_norm="spectral")
    g, d = Generator(cfg).eval(), Discriminator(cfg)
    img = g(torch.randn(3, 8))
    assert img.shape == (3, channels, size, size)
    assert img.abs().max() <= 1
    assert d(img).shape == (3,)


def test_layer_names_are_meaningful_and_match_modules(tiny_cfg):
    g = Generator(tiny_cfg)
    assert g.layer_names == ["stem", "up8", "up16", "to_rgb"]
    params = [n for n, _ in g.named_parameters()]
    assert any(n.startswith("blocks.up16.") for n in params)
    assert any(n.startswith("to_rgb") for n in params)


@pytest.mark.parametrize("width", [8, 24])
def test_resize_conv_without_autograd_is_the_same_image_and_follows_weight_changes(width):
    """Nearest upsampling + 3x3 conv runs as one transposed conv (or, for few output channels, its
    four phases) when nothing needs gradients: the same picture, checkpoint names unchanged, and an
    in-place weight change (damage) seen. Width 8: every layer phased; 24: the wide ones not."""
    cfg = DCGANConfig(image_size=64, channels=3, latent_size=8, width=width, upsample="nearest", g_norm="pixel")
    g = Generator(cfg).eval()
    phased = {m._phased for m in g.modules() if isinstance(m, ResizeConv2d)}
    assert phased == ({True} if width == 8 else {True, False})
    assert "to_rgb.1.weight" in g.state_dict() and "blocks.up16.conv.1.weight" in g.state_dict()
    z = torch.randn(5, 8)

    def plain() -> torch.Tensor:                 # the published path: upsample, then convolve
        with torch.enable_grad():
            return g(z.clone().requires_grad_(True)).detach()

    def fast() -> torch.Tensor:
        with torch.inference_mode():
            return g(z)
    before = fast()
    assert torch.allclose(before, plain(), atol=1e-5)
    live = g.state_dict()
    with torch.inference_mode():                 # as the installation's damage writes weights
        live["blocks.up16.conv.1.weight"].mul_(-0.5)
    with torch.no_grad():
        live["to_rgb.1.weight"][:, :2].zero_()
    after = fast()
    assert (after - before).abs().max() > 0.05
    assert torch.allclose(after, plain(), atol=1e-5)


@pytest.mark.parametrize("bad,word", [(dict(image_size=48), "image_size"), (dict(channels=2), "channels"),
                                      (dict(g_norm="layer"), "g_norm"), (dict(d_dropout=1.5), "d_dropout")])
def test_config_errors_name_the_field(bad, word):
    with pytest.raises(ValueError, match=word):
        DCGANConfig(**bad)


def _save(tmp_path, cfg, **kw):
    g = Generator(cfg).eval()
    meta = GeneratorMeta("dcgan", cfg, step=7, dataset="tiny", dataset_licence="CC0",
                         anchors=[Anchor("a.png", torch.randn(cfg.latent_size).tolist())], **kw)
    path = tmp_path / "g.safetensors"
    save_generator(path, g, meta)
    return g, path


def test_round_trip_rebuilds_from_metadata_alone(tmp_path, tiny_cfg):
    g, path = _save(tmp_path, tiny_cfg)
    g2, meta = load_generator(path)
    assert meta.config == tiny_cfg and meta.step == 7 and meta.dataset_licence == "CC0"
    assert meta.anchors[0].name == "a.png" and meta.anchor_tensor().shape == (1, tiny_cfg.latent_size)
    z = torch.randn(2, tiny_cfg.latent_size)
    assert torch.equal(g(z), g2(z))
    assert not g2.training


def test_a_saved_generator_is_readable_as_any_file_the_user_writes(tmp_path, tiny_cfg):
    """Atomic writes go through an owner-only temp file; the result gets the umask's usual mode, so
    a gallery service running as another user can read a model that was bundled or trained."""
    import os
    old = os.umask(0o022)
    try:
        _, path = _save(tmp_path, tiny_cfg)
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        _, private = _save(tmp_path / "private", tiny_cfg)
        assert private.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_snapshots_round_trip_in_fp16(tmp_path, tiny_cfg):
    g = Generator(tiny_cfg)
    snap = {k: v * 0.5 for k, v in g.state_dict().items()}
    meta = GeneratorMeta("dcgan", tiny_cfg, snapshot_steps=[3])
    save_generator(tmp_path / "s.safetensors", g, meta, [snap])
    _, meta2, snaps = load_generator(tmp_path / "s.safetensors", with_snapshots=True)
    assert meta2.snapshot_steps == [3]
    w = "blocks.up8.conv.weight"
    assert torch.allclose(snaps[0][w], snap[w], atol=1e-3)


def test_tampered_weights_are_refused(tmp_path, tiny_cfg):
    _, path = _save(tmp_path, tiny_cfg)
    data = bytearray(path.read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    data[8 + header_len + 100] ^= 0xFF  # flip one byte of tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_generator(path)


def test_tampered_metadata_is_refused_and_version_1_files_still_load(tmp_path, tiny_cfg):
    """The anchors (what the installation walks between), the step, the data set: the metadata has a
    digest of its own. Files of format 1 (tensors checked only) are still read."""
    _, path = _save(tmp_path, tiny_cfg)
    data = path.read_bytes()
    assert data.count(b'"step":"7"') == 1
    path.write_bytes(data.replace(b'"step":"7"', b'"step":"8"'))       # one digit, same length
    with pytest.raises(CheckpointError, match="metadata .* does not match its recorded SHA-256"):
        load_generator(path)
    from safetensors import safe_open
    from safetensors.torch import save_file
    path.write_bytes(data)
    with safe_open(str(path), framework="pt") as f:
        header, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    old = {k: v for k, v in header.items() if k != "sha256_header"} | {"format_version": "1"}
    save_file(tensors, str(tmp_path / "v1.safetensors"), metadata=old)
    assert load_generator(tmp_path / "v1.safetensors")[1].step == 7


def test_truncated_and_missing_files_are_clear_errors(tmp_path, tiny_cfg):
    _, path = _save(tmp_path, tiny_cfg)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        load_generator(path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_generator(tmp_path / "nope.safetensors")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_whose_header_length_looks_like_a_pickle_loads(tmp_path, tiny_cfg):
    """A safetensors file begins with its header's length: one in 256 begins with byte 0x80, a
    pickle's first byte. Such a checkpoint is still a checkpoint (found as a flaky refusal)."""
    for pad in range(300):
        g, path = _save(tmp_path, tiny_cfg, extra={"note": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        raise AssertionError("no padding gave a header length ending in 0x80")
    loaded, meta = load_generator(path)
    assert meta.extra["note"] == "x" * pad
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), loaded.state_dict().values()))


def test_pickles_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(CheckpointError, match="pickle"):
        load_generator(bad)
    zipped = tmp_path / "model.pt"
    torch.save({"x": _Evil(str(marker))}, zipped)
    with pytest.raises(CheckpointError):
        load_generator(zipped)
    with pytest.raises(CheckpointError, match="refused"):
        load_resume(zipped)
    assert not marker.exists()


def test_resume_state_round_trips_plain_tensors(tmp_path):
    save_resume(tmp_path / "r.pt", {"step": 3, "w": torch.ones(2), "rng": torch.get_rng_state()})
    s = load_resume(tmp_path / "r.pt")
    assert s["step"] == 3 and torch.equal(s["w"], torch.ones(2))


def test_a_checkpoint_with_non_finite_weights_or_anchors_is_refused_naming_the_file(tmp_path, tiny_cfg):
    """A run that diverged is saved with correct digests by save_generator itself: its NaN weights (or
    anchors) are refused at load, with the file and what is wrong, not shown as broken frames."""
    g = Generator(tiny_cfg).eval()
    weight = next(n for n in g.state_dict() if n.startswith("to_rgb") and n.endswith("weight"))
    with torch.no_grad():
        g.state_dict()[weight].view(-1)[0] = float("nan")
    meta = GeneratorMeta("dcgan", tiny_cfg, anchors=[Anchor("a.png", torch.randn(tiny_cfg.latent_size).tolist())])
    path = tmp_path / "nan.safetensors"
    save_generator(path, g, meta)
    with pytest.raises(CheckpointError, match=r"nan\.safetensors: its weights hold NaN .*" + re.escape(weight)):
        load_generator(path)
    for bad in (float("nan"), float("inf"), -float("inf")):
        z = torch.randn(tiny_cfg.latent_size).tolist()
        z[3] = bad
        meta = GeneratorMeta("dcgan", tiny_cfg, anchors=[Anchor("odd.png", z)])
        save_generator(path, Generator(tiny_cfg), meta)
        with pytest.raises(CheckpointError, match=r"nan\.safetensors: anchor 'odd\.png' holds NaN or infinite"):
            load_generator(path)


def test_progress_without_a_terminal_is_a_line_every_few_seconds():
    import io
    from models.progress import LogProgress, progress_bar
    now = [0.0]
    out = io.StringIO()
    bar = LogProgress(100, unit="frame", file=out, every_s=10, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 0.5
        bar.update(1)
    bar.set_postfix(g="0.5")
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 6                    # start, every 10 s (20 frames)
    assert lines[1].startswith(" 20% 20/100 [00:10<00:40,  2.00frame/s") and lines[-1].startswith("100% 100/100")
    assert isinstance(progress_bar(3, file=io.StringIO()), LogProgress)     # a file: lines

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    assert not isinstance(progress_bar(3, file=Terminal()), LogProgress)     # a terminal: tqdm's bar

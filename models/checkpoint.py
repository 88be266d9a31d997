"""Safe checkpoint I/O: one `.safetensors` file per generator, rebuilt from its own metadata.

Why safetensors: a pickle (what `torch.save` writes) can run arbitrary code when loaded, and a
gallery PC loads whatever file a technician copies onto it. A safetensors file is plain tensors
plus a string→string header, so loading one executes nothing. The header carries the
architecture and its config, so the network is rebuilt with no size retyped and loaded
strictly. A SHA-256 of the tensor bytes in the header turns silent tampering into a clear error.

Training resume state (discriminator, optimisers, EMA, RNG) lives beside the generator in a
`.resume.pt` file loaded with `weights_only=True` — never a full unpickle.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import registry
from .detail import DETAIL_PREFIX, DetailError, DetailPack

FORMAT_VERSION = "2"      # 2: the metadata has a digest of its own (anchors, step, ... are checked too)
DETAIL_VERSION = "3"      # 3: as 2, with a detail stage (models/detail.py); written only when there is one
READABLE_VERSIONS = ("1", "2", "3")   # 1: only the tensors were checked; still read
SNAPSHOT_PREFIX = "snapshot."   # tensors "snapshot.<k>.<param name>" (fp16), for the regression symptom


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says what is wrong and what to do."""


@dataclass
class Anchor:
    """A latent that recalls one training image, in the space the installation walks: z for a
    DCGAN, w for a style-based generator (its `latent_space`)."""
    name: str
    z: list[float]


@dataclass
class GeneratorMeta:
    architecture: str
    config: Any
    step: int = 0
    dataset: str = ""
    dataset_licence: str = ""
    anchors: list[Anchor] = field(default_factory=list)
    snapshot_steps: list[int] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    detail: DetailPack | None = None     # the memories' verbatim detail (models/detail.py), if made

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def latent_size(self) -> int:
        return self.config.latent_size

    def anchor_tensor(self) -> torch.Tensor:
        """Anchors as float32 [A, latent] (empty [0, latent] when none were found)."""
        if not self.anchors:
            return torch.zeros(0, self.latent_size)
        return torch.tensor([a.z for a in self.anchors], dtype=torch.float32)


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def header_digest(header: dict[str, str]) -> str:
    """SHA-256 of every metadata field but this digest itself, in a canonical order."""
    fields = {k: v for k, v in header.items() if k != "sha256_header"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)      # no /proc: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Write through `write(tmp_path)` to a temp file beside `path`, fsync, then rename:
    a crash leaves the old file or the new one, never half of one. The file gets the permissions
    a plain open() would give it (a temp file's own are owner-only, and a gallery service running
    as another user could not read a model bundled that way)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_generator(path: str | Path, generator: torch.nn.Module, meta: GeneratorMeta,
                   snapshots: list[dict[str, torch.Tensor]] | None = None) -> None:
    """Save a generator (and optional fp16 snapshots from across training) atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    snapshots = snapshots or []
    if len(snapshots) != len(meta.snapshot_steps):
        raise ValueError("one snapshot step per snapshot is required")
    for k, snap in enumerate(snapshots):
        for name, value in snap.items():
            tensors[f"{SNAPSHOT_PREFIX}{k}.{name}"] = value.detach().cpu().to(torch.float16).contiguous()
    if meta.detail is not None:
        tensors.update(meta.detail.tensors())
    header = {
        "format": "lapses-generator",
        "format_version": DETAIL_VERSION if meta.detail is not None else FORMAT_VERSION,
        "architecture": meta.architecture,
        "config": meta.config.to_json(),
        "image_size": str(meta.image_size),
        "channels": str(meta.channels),
        "latent_size": str(meta.latent_size),
        "step": str(meta.step),
        "dataset": meta.dataset,
        "dataset_licence": meta.dataset_licence,
        "anchors": json.dumps([{"name": a.name, "z": [float(f"{v:.7g}") for v in a.z]} for a in meta.anchors]),
        "snapshot_steps": json.dumps(meta.snapshot_steps),
        "sha256": digest(tensors),
        **{f"extra.{k}": v for k, v in meta.extra.items()},
        **({"detail": meta.detail.header()} if meta.detail is not None else {}),
    }
    header["sha256_header"] = header_digest(header)
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=header))


def out_problem(out: Path, given: bool, overwrite: bool) -> str | None:
    """Why a command may not write a generator to `out` (its --out, or in place when not `given`):
    None when it may. Said the same by every command that rewrites a checkpoint."""
    if out.suffix != ".safetensors":
        return f"--out {out}: a generator is a .safetensors file; give a name ending in .safetensors"
    if given and out.exists() and not overwrite:
        return f"--out {out} exists; choose another name or add --overwrite to replace it"
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        return f"{out.parent}: not a writable folder; create it or choose another --out"
    return None


def _refuse_pickles(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    # a safetensors file: a little-endian header length (whose low byte may be anything, 0x80
    # too), then the JSON header
    if len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8:
        return
    if (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or head[:4] == b"PK\x03\x04":
        raise CheckpointError(
            f"{path}: this is a pickled (torch.save) file, not a safetensors checkpoint. Lapses never "
            "unpickles model files because they can run code. Convert it with a trusted script, or "
            "train one with `python -m training train`.")
    if len(head) < 8:
        raise CheckpointError(f"{path}: file is empty or truncated; copy the checkpoint again.")


def read_header(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give the .safetensors file in it (a run's is "
                              f"generator.safetensors).")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; check the path (models end in .safetensors).")
    _refuse_pickles(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); it may be truncated or "
                              "corrupt — copy it again or re-export it.") from None
    if header.get("format") != "lapses-generator":
        raise CheckpointError(f"{path}: a safetensors file but not a Lapses generator (no 'format' "
                              "metadata); save it with models.save_generator.")
    if header.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: checkpoint format version {header.get('format_version')!r} is "
                              f"not supported (this Lapses reads versions {', '.join(READABLE_VERSIONS)}).")
    if header["format_version"] != "1" and header.get("sha256_header") != header_digest(header):
        raise CheckpointError(f"{path}: its metadata (anchors, step, data set, ...) does not match its recorded "
                              "SHA-256 — the file was modified or damaged after saving. Copy it again from the "
                              "original.")
    return header


def _parse_meta(path: Path, header: dict[str, str]) -> GeneratorMeta:
    try:
        arch = header["architecture"]
        config = registry.config_from_json(arch, header["config"])
        meta = GeneratorMeta(
            architecture=arch, config=config, step=int(header.get("step", "0")),
            dataset=header.get("dataset", ""), dataset_licence=header.get("dataset_licence", ""),
            anchors=[Anchor(a["name"], [float(v) for v in a["z"]]) for a in json.loads(header.get("anchors", "[]"))],
            snapshot_steps=[int(s) for s in json.loads(header.get("snapshot_steps", "[]"))],
            extra={k[6:]: v for k, v in header.items() if k.startswith("extra.")})
    except (KeyError, ValueError, TypeError, OverflowError, RecursionError) as e:   # 1e999 steps, [[[[...
        raise CheckpointError(f"{path}: checkpoint metadata is damaged ({type(e).__name__}: {str(e)[:200]}).") from None
    for key in ("image_size", "channels", "latent_size"):
        if header.get(key) != str(getattr(meta, key)):
            raise CheckpointError(f"{path}: metadata {key}={header.get(key)} disagrees with its config; "
                                  "the file has been edited or damaged.")
    for a in meta.anchors:
        if not isinstance(a.name, str):      # the name of its training image: a file name, a HUD line
            raise CheckpointError(f"{path}: an anchor is named {a.name!r}, not by text; the file has been edited "
                                  "or damaged.")
        if len(a.z) != meta.latent_size:
            raise CheckpointError(f"{path}: anchor {a.name!r} has {len(a.z)} values, latent size is "
                                  f"{meta.latent_size}; the file has been edited or damaged.")
        if not all(math.isfinite(v) for v in a.z):
            raise CheckpointError(f"{path}: anchor {a.name!r} holds NaN or infinite values; the model diverged "
                                  "before it was saved. Use an earlier checkpoint or train it again.")
    return meta


def _refuse_non_finite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """A model that diverged in training (NaN/Inf weights) is saved with correct digests, and would
    show nothing but broken frames: refuse it, naming the first tensors that are not finite."""
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        names = ", ".join(sorted(bad)[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"{path}: its weights hold NaN or infinite values ({names}); the model diverged "
                              "before it was saved. Use an earlier checkpoint or train it again.")


def load_generator(path: str | Path, device: str | torch.device | None = None,
                   with_snapshots: bool = False):
    """Rebuild a generator from the checkpoint alone. Returns (generator in eval mode, meta),
    or (generator, meta, snapshots) with `with_snapshots=True` (snapshots: list of fp32 state dicts,
    oldest first)."""
    path = Path(path)
    header = read_header(path)
    meta = _parse_meta(path, header)
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: tensor data unreadable ({e}); copy the checkpoint again.") from None
    if header.get("sha256") != digest(tensors):
        raise CheckpointError(f"{path}: tensor data does not match its recorded SHA-256 — the file was "
                              "modified or damaged after saving. Copy it again from the original.")
    _refuse_non_finite(path, tensors)
    if "detail" in header:
        try:
            meta.detail = DetailPack.from_header(header["detail"], tensors)
        except DetailError as e:
            raise CheckpointError(f"{path}: {e}; the file was edited or damaged — copy it again, or make its "
                                  "detail stage anew with `python -m training detail`.") from None
    generator = registry.build_generator(meta.architecture, meta.config)
    state = {k: v for k, v in tensors.items() if not k.startswith((SNAPSHOT_PREFIX, DETAIL_PREFIX))}
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the {meta.architecture} config they claim "
                              f"({str(e).splitlines()[0]}).") from None
    generator.eval().requires_grad_(False)
    if device is not None:
        generator.to(device)
    if not with_snapshots:
        return generator, meta
    snapshots = []
    for k in range(len(meta.snapshot_steps)):
        prefix = f"{SNAPSHOT_PREFIX}{k}."
        snap = {n[len(prefix):]: v.float() for n, v in tensors.items() if n.startswith(prefix)}
        if set(snap) != set(state):
            raise CheckpointError(f"{path}: snapshot {k} does not match the generator's weights.")
        snapshots.append(snap)
    return generator, meta, snapshots


def save_resume(path: str | Path, state: dict[str, Any]) -> None:
    """Training state beside the generator: tensors, numbers and strings only."""
    atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load_resume(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no resume state here; start without --resume.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # weights_only refuses anything but plain tensors and containers
        raise CheckpointError(f"{path}: resume state refused or unreadable "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]}).") from None

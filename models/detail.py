"""The detail stage: each memory's verbatim detail, borrowed where the picture agrees with it.

A generator of 128 pixels draws the *gist* of a memory; on a gallery screen it is a soft picture
upscaled eight times, and no 128-pixel network can show a face. But the memories are known: the
training photographs are kept at full resolution. So a checkpoint may carry a `DetailPack` — each
memory's photograph at the detail size, cropped exactly as training cropped it, JPEG-encoded — and
`DetailStage` lays it over the upscaled picture wherever, and as much as, the picture agrees with
that memory's own healthy picture:

    out = up(x) + sum_k  a_k(x) * (photo_k - up(a_k))

where `a_k` is the healthy generator's picture at memory k's anchor and `a_k(x)` in [0, 1] is their
local agreement: exp(-local mean squared difference / AGREEMENT^2), over a Gaussian window of
SPREAD generator pixels. At an anchor the picture is the photograph; as the walk leaves it, or the
illness changes it, the agreement falls and the borrowed detail with it, so between memories the
picture is the gist alone (no ghost of a photograph where the picture is elsewhere). Only the
CANDIDATES memories nearest the picture (on a 16-pixel thumbnail) are compared each frame.

Fuzzy-trace theory's verbatim and gist traces: the pack is the verbatim trace, and the symptom
`detail_loss` (installation) takes it first, through the `keep` mask.

Shared by `installation` (the live piece and the film) and `training` (building the pack and
measuring it), which may not import each other.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

DETAIL_PREFIX = "detail."        # tensors "detail.<k>": memory k's encoded photograph (uint8)
CODECS = ("jpeg",)
MIN_SIZE, MAX_SIZE = 16, 4096
NEGLIGIBLE = 1.0 / 512          # a memory lending no more than this anywhere changes no 8-bit level
DEFAULT_QUALITY = 92             # JPEG quality: SSIM 0.93-1.00 against the photograph, ~57 kB a 512 px memory


class DetailError(ValueError):
    """A detail pack that cannot be used; the message says what is wrong."""


@dataclass
class DetailPack:
    """Each memory's photograph at `size` x `size`, encoded: the verbatim trace a checkpoint carries."""
    size: int
    channels: int
    names: list[str]                       # training image names, as the anchors name them
    images: list[torch.Tensor] = field(repr=False)   # uint8 [bytes] each: the encoded photograph
    quality: int = DEFAULT_QUALITY
    codec: str = "jpeg"

    @classmethod
    def encode(cls, photos: torch.Tensor, names: list[str], quality: int = DEFAULT_QUALITY) -> "DetailPack":
        """photos [N, C, D, D] in [-1, 1] (C 1 or 3), one per name -> a pack."""
        if photos.ndim != 4 or photos.shape[1] not in (1, 3) or photos.shape[2] != photos.shape[3]:
            raise DetailError(f"photographs must be [N, 1 or 3, D, D], not {tuple(photos.shape)}")
        if len(names) != photos.shape[0]:
            raise DetailError(f"{photos.shape[0]} photographs but {len(names)} names")
        u8 = ((photos.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
        images = []
        for img in u8:
            hwc = np.ascontiguousarray(img.transpose(1, 2, 0))
            if hwc.shape[2] == 3:
                hwc = cv2.cvtColor(hwc, cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".jpg", hwc, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
            if not ok:
                raise DetailError("OpenCV could not encode a photograph as JPEG")
            images.append(torch.from_numpy(buf.reshape(-1).copy()))
        return cls(int(photos.shape[2]), int(photos.shape[1]), list(names), images, int(quality))

    def header(self) -> str:
        return json.dumps({"size": self.size, "channels": self.channels, "names": self.names,
                           "quality": self.quality, "codec": self.codec})

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{DETAIL_PREFIX}{k}": img.contiguous() for k, img in enumerate(self.images)}

    @classmethod
    def from_header(cls, text: str, tensors: dict[str, torch.Tensor]) -> "DetailPack":
        """The pack a checkpoint describes (DetailError when its description does not hold)."""
        try:
            d = json.loads(text)
            size, channels, quality = int(d["size"]), int(d["channels"]), int(d.get("quality", DEFAULT_QUALITY))
            names, codec = [str(n) for n in d["names"]], str(d.get("codec", "jpeg"))
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as e:   # size: Infinity; [[[...
            raise DetailError(f"its detail description is damaged ({type(e).__name__}: {str(e)[:200]})") from None
        if codec not in CODECS or channels not in (1, 3) or not MIN_SIZE <= size <= MAX_SIZE:
            raise DetailError(f"its detail stage has codec {codec!r}, {channels} channels, size {size}; "
                              f"allowed: codec {', '.join(CODECS)}, 1 or 3 channels, size {MIN_SIZE}..{MAX_SIZE}")
        images = []
        for k in range(len(names)):
            t = tensors.get(f"{DETAIL_PREFIX}{k}")
            if t is None or t.dtype != torch.uint8 or t.ndim != 1:
                raise DetailError(f"its detail stage lacks memory {k}'s photograph ({names[k]!r})")
            images.append(t)
        if sum(1 for n in tensors if n.startswith(DETAIL_PREFIX)) != len(names):
            raise DetailError("its detail stage holds more photographs than it names")
        pack = cls(size, channels, names, images, quality, codec)
        for k in range(len(names)):     # now, not on the first frame that borrows one (~3 ms at 512 px)
            pack._image(k)
        return pack

    @property
    def nbytes(self) -> int:
        return sum(int(t.numel()) for t in self.images)

    def _image(self, k: int) -> np.ndarray:
        """Memory k's photograph as OpenCV decodes it (uint8 [size, size] or BGR [size, size, 3])."""
        buf = self.images[k].numpy()
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if self.channels == 1 else cv2.IMREAD_COLOR)
        if img is None or img.shape[:2] != (self.size, self.size):
            raise DetailError(f"memory {self.names[k]!r}'s photograph cannot be decoded at {self.size} px")
        return img

    def decode(self, k: int) -> torch.Tensor:
        """Memory k's photograph: float32 [C, size, size] in [-1, 1]."""
        img = self._image(k)
        if self.channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        else:
            img = img[..., None]
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 127.5 - 1.0


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, 1, H, W] with replicated borders (same size). On a CPU through
    OpenCV, all N planes as the channels of one image (a tenth of torch's time there, same kernel)."""
    r = max(1, int(round(3 * sigma)))
    if x.device.type == "cpu" and x.dtype == torch.float32:
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        planes = np.ascontiguousarray(x.detach().reshape(n, h, w).numpy().transpose(1, 2, 0))    # [H, W, N]
        blurred = np.concatenate([cv2.GaussianBlur(np.ascontiguousarray(planes[..., k:k + 128]), (2 * r + 1, 2 * r + 1),
                                                   sigma, borderType=cv2.BORDER_REPLICATE).reshape(h, w, -1)
                                  for k in range(0, n, 128)], axis=2)        # OpenCV: at most 128 channels
        return torch.from_numpy(np.ascontiguousarray(blurred.reshape(h, w, n).transpose(2, 0, 1))).view(n, 1, h, w)
    coords = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return F.conv2d(x, g.view(1, 1, -1, 1))


def resize(x: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """[N, C, h, w] float -> [N, C, size, size], bicubic or bilinear with half-pixel centres. On a CPU
    through OpenCV (5-20x faster than torch's there); elsewhere torch's, which computes the same
    filters (a = -0.75, replicated borders) to within float rounding."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.device.type != "cpu":
        return F.interpolate(x, size=(size, size), mode=mode, align_corners=False)
    interp = cv2.INTER_CUBIC if mode == "bicubic" else cv2.INTER_LINEAR
    n, c = x.shape[:2]
    planes = x.detach().float().reshape(n * c, *x.shape[-2:]).numpy().transpose(1, 2, 0)   # [h, w, N*C]
    out = []
    for k in range(0, n * c, 4):            # OpenCV resizes up to 4 channels at once at full speed
        r = cv2.resize(np.ascontiguousarray(planes[..., k:k + 4]), (size, size), interpolation=interp)
        out.append(r.reshape(size, size, -1))
    return torch.from_numpy(np.concatenate(out, axis=2).transpose(2, 0, 1).copy()).view(n, c, size, size)


def upscale(x: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, h, w] -> [N, C, size, size], bicubic (as OpenCV's, half-pixel centres)."""
    return resize(x, size, "bicubic")


class DetailStage:
    """Pictures [N, C, S, S] in [-1, 1] -> [N, C, D, D]: the gist upscaled, with each memory's
    photograph borrowed where the picture agrees with that memory's healthy picture."""

    CANDIDATES = 3            # memories compared per frame (nearest on a thumbnail)
    AGREEMENT = 0.05          # RMS difference (in [-1, 1] units) at which agreement is 1/e
    SPREAD = 2.0              # sigma of the agreement window, in generator pixels
    THUMB = 16                # thumbnail side for choosing the candidates
    CACHE_BYTES = 256 * 2 ** 20

    def __init__(self, pack: DetailPack, anchor_names: list[str], healthy: torch.Tensor):
        """healthy [A, C, S, S]: the healthy piece's picture at each anchor, in `anchor_names`' order.
        Anchors without a photograph in the pack are left out (no detail is borrowed for them)."""
        self.pack, self.size = pack, pack.size
        index = {n: k for k, n in enumerate(pack.names)}
        keep = [i for i, n in enumerate(anchor_names) if n in index]
        if not keep:
            raise DetailError("none of the model's memories has a photograph in its detail stage")
        if healthy.shape[1] != pack.channels or healthy.shape[-1] > pack.size:
            raise DetailError(f"its detail stage ({pack.channels} channels, {pack.size} px) does not fit the "
                              f"generator ({healthy.shape[1]} channels, {healthy.shape[-1]} px)")
        self.photo_of = [index[anchor_names[i]] for i in keep]      # candidate -> pack index
        self.healthy = healthy[keep].float().contiguous()            # [M, C, S, S]
        self.thumbs = F.adaptive_avg_pool2d(self.healthy, self.THUMB).flatten(1)   # [M, C*T*T]
        self._residuals: "OrderedDict[int, torch.Tensor]" = OrderedDict()
        self._planes: "OrderedDict[tuple[int, bytes], np.ndarray]" = OrderedDict()    # planar_frames' residuals
        self._lock = threading.Lock()
        self._buffers = threading.local()          # each thread's frame buffer (uint8_frames)

    @property
    def device(self) -> torch.device:
        return self.healthy.device

    def _kept(self, cache: OrderedDict, key, make):
        """cache[key], made by make() when missing; the least recently used out past CACHE_BYTES."""
        with self._lock:
            value = cache.get(key)
            if value is not None:
                cache.move_to_end(key)
                return value
        value = make()
        with self._lock:
            cache[key] = value
            while len(cache) > 1 and sum(v.nbytes for v in cache.values()) > self.CACHE_BYTES:
                cache.popitem(last=False)
        return value

    def residual(self, m: int):
        """photo - up(healthy picture) of candidate m, kept (least recently used out): on a CPU a numpy
        array [D, D, C] (the layout the CPU path composes in), elsewhere a tensor [C, D, D] on the device."""
        def make():
            r = self.pack.decode(self.photo_of[m]).to(self.device) - upscale(self.healthy[m:m + 1], self.size)[0]
            return np.ascontiguousarray(r.numpy().transpose(1, 2, 0)) if self.device.type == "cpu" else r
        return self._kept(self._residuals, m, make)

    def agreement(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For pictures [N, C, S, S]: the candidates (indices [N, K]) and how much of each one's
        detail to lay on each pixel ([N, K, 1, S, S], summing to at most 1 per pixel)."""
        img = img.float()
        n, k = img.shape[0], min(self.CANDIDATES, self.healthy.shape[0])
        thumbs = F.adaptive_avg_pool2d(img, self.THUMB).flatten(1)
        near = torch.cdist(thumbs, self.thumbs).topk(k, dim=1, largest=False).indices     # [N, K]
        diff = self.healthy[near].sub_(img[:, None])                                        # [N, K, C, S, S]
        diff = diff.mul_(diff).mean(dim=2, keepdim=True)                                    # [N, K, 1, S, S]
        s = img.shape[-1]
        local = _gaussian(diff.reshape(n * k, 1, s, s), self.SPREAD).reshape(n, k, 1, s, s)
        # agreement below e^-30 is none at all; the bound keeps exp from underflowing (5x slower there)
        a = torch.exp(local.mul_(-1.0 / self.AGREEMENT ** 2).clamp_min_(-30.0))
        share = a * a / a.sum(dim=1, keepdim=True).clamp_min(1e-6)   # agreeing memories share a pixel
        return near, share

    def __call__(self, img: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """img [N, C, S, S] in [-1, 1] -> [N, C, D, D] in [-1, 1]; `keep` [N, 1, D, D] in [0, 1]
        (or None: all of it) is how much of the verbatim detail is left (detail_loss)."""
        near, share = self.agreement(img)
        if self.device.type == "cpu":
            return self._compose_cpu(img, near, share, keep)
        out = upscale(img.float(), self.size)
        n, k = near.shape
        weights = resize(share.reshape(n, k, img.shape[-2], img.shape[-1]), self.size, "bilinear")   # [N, K, D, D]
        if keep is not None:
            weights = weights * keep
        for i in range(n):
            for j in range(k):
                w = weights[i, j]
                if float(w.max()) < NEGLIGIBLE:
                    continue
                out[i] += w * self.residual(int(near[i, j]))
        return out.clamp_(-1, 1)

    def uint8_frames(self, img: torch.Tensor, keep: torch.Tensor | None = None):
        """As calling the stage, but to 8-bit pixels, as the output chain takes them: the candidates and
        their agreement for the whole batch now, and frame(i) -> picture i as uint8 [D, D, 3] (grey
        repeated). On a CPU each frame is composed in one buffer (its thread's own) and converted
        while it is still in cache: a quarter less time than composing the batch, then converting it."""
        if self.device.type != "cpu":
            u8 = to_uint8(self(img, keep), rgb=True)
            return lambda i: u8[i]
        near, share = self.agreement(img)
        x, a = self._channels_last(img, share)
        d, c = self.size, x.shape[3]

        def frame(i: int) -> np.ndarray:
            buf = getattr(self._buffers, "frame", None)
            if buf is None or buf.shape != (d, d, c):
                buf = self._buffers.frame = np.empty((d, d, c), np.float32)
            self._compose_frame(buf, x[i], a[i], near[i], None if keep is None else keep[i, 0], clip=False)
            # saturates: the clip to [-1, 1], in the same pass. A finite picture (as the engine's always
            # are) composes a finite one (photographs, bounded shares): then no pass looks for NaN there
            return to_uint8(buf, rgb=True, finite=bool(np.isfinite(x[i]).all()))
        return frame

    def planar_frames(self, img: torch.Tensor, keep: torch.Tensor | None, matrix: np.ndarray,
                      offset: np.ndarray, shade: np.ndarray | None = None,
                      limits: tuple[tuple[int, int], ...] = ((0, 255),) * 3):
        """For an encoder on a CPU: frame(i) -> the three uint8 planes [D, D] of picture i (as
        `uint8_frames` gives it, grey repeated) shaded by `shade` and converted to another colour
        space: plane p = sat(round(shade * (matrix[p] . rgb) + offset[p])), rgb in levels 0..255
        (e.g. BT.601 YUV and a vignette: what Output.i420 makes of the 8-bit picture, without
        making it). Composed plane by plane: each memory's detail weight is one plane, not one per
        channel, and no 8-bit RGB picture, colour conversion or split is made at the detail size —
        about a third of the memory traffic of composing RGB and converting it. `shade` [S, S] at
        the generator's size is laid on the picture and on the weights before they are enlarged: it
        must be smooth over the enlarging filter's 4 generator pixels, as a vignette is (on the
        bundled models within a level of shading the enlarged picture; at 32 px a picture of white
        noise under a strong vignette is off by a few). `limits`:
        each plane's range (BT.601's 16..235 and 16..240), where 8-bit RGB is clipped at 0 and 255:
        a grey picture's planes are then the converted 8-bit picture's to the level; a colour
        beyond what RGB holds (a photograph's detail over a bright picture) keeps a little more of
        its hue than RGB's clipping would leave it."""
        near, share = self.agreement(img)
        x, a = self._channels_last(img, share)
        d, c = self.size, x.shape[3]
        rgb_of = np.ones((3, 1), np.float32) if c == 1 else np.eye(3, dtype=np.float32)
        m = (np.asarray(matrix, np.float32) @ rgb_of) * 127.5                    # per [-1, 1] unit of each channel
        base_m = np.hstack([m, m.sum(axis=1, keepdims=True)]).astype(np.float32)  # 127.5 (x + 1), converted
        key = m.tobytes()
        offset = [float(v) for v in offset]
        shade3 = None if shade is None else cv2.merge([np.asarray(shade, np.float32)] * 3)

        def frame(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            buf = getattr(self._buffers, "plane", None)
            if buf is None or buf.shape != (d, d):
                buf = self._buffers.plane = np.empty((d, d), np.float32)
            xi = np.ascontiguousarray(x[i])
            base = cv2.transform(xi, base_m)                                    # [S, S, 3], levels less offset
            if shade3 is not None:
                base = cv2.multiply(base, shade3)
            kept = None if keep is None else keep[i, 0].numpy()
            lent = []                   # (weight [D, D], residual planes [3, D, D]) of each lending memory
            for j in range(a.shape[1]):
                aj = a[i, j]
                if float(aj.max()) < NEGLIGIBLE:
                    continue
                w = self._weight(aj if shade is None else cv2.multiply(aj, shade), kept)
                if w is not None:
                    lent.append((w, self.residual_planes(int(near[i, j]), m, key)))
            finite = bool(np.isfinite(xi).all())
            out = []
            # one plane at a time, start to end, in one buffer (a megabyte at 512 px: it stays in the
            # core's cache while it is enlarged, lent its detail and converted)
            for p, small in enumerate(cv2.split(base)):
                cv2.resize(small, (d, d), buf, interpolation=cv2.INTER_CUBIC)
                for w, r in lent:
                    cv2.accumulateProduct(w, r[p], buf)                         # plane += w * residual
                plane = buf if finite else np.nan_to_num(buf, nan=0.0, posinf=255.0, neginf=-255.0)
                u8 = cv2.addWeighted(plane, 1.0, plane, 0.0, offset[p], dtype=cv2.CV_8U)   # rounded, saturated
                lo, hi = limits[p]
                if lo > 0 or hi < 255:
                    np.clip(u8, lo, hi, out=u8)
                out.append(u8)
            return tuple(out)
        return frame

    def residual_planes(self, m: int, matrix: np.ndarray, key: bytes) -> np.ndarray:
        """Candidate m's residual converted by `matrix` ([3, C], per [-1, 1] unit; `key` names it), as
        planes [3, D, D] float32 (kept, like `residual`, least recently used out)."""
        return self._kept(self._planes, (m, key), lambda: np.ascontiguousarray(
            cv2.transform(np.ascontiguousarray(self.residual(m)), matrix).transpose(2, 0, 1)))

    def _weight(self, share: np.ndarray, keep: np.ndarray | None) -> np.ndarray | None:
        """One candidate's share [S, S] enlarged to the detail size, times what detail_loss keeps of
        it (`keep` [D, D]); None where that leaves nothing."""
        w = cv2.resize(share, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        if keep is not None:
            cv2.multiply(w, keep, dst=w)
            if float(w.max()) < NEGLIGIBLE:     # what detail_loss left of it is nothing
                return None
        return w

    @staticmethod
    def _channels_last(img, share) -> tuple[np.ndarray, np.ndarray]:
        return img.detach().float().permute(0, 2, 3, 1).numpy(), share[:, :, 0].numpy()   # [N, S, S, C], [N, K, S, S]

    def _compose_cpu(self, img, near, share, keep) -> torch.Tensor:
        """The same on a CPU, composed channels-last with OpenCV (a fifth of torch's time there): the
        result is a channels-first view of [N, D, D, C] memory, which the output chain turns into 8-bit
        pixels without another copy."""
        x, a = self._channels_last(img, share)
        out = np.empty((x.shape[0], self.size, self.size, x.shape[3]), np.float32)
        for i in range(x.shape[0]):
            self._compose_frame(out[i], x[i], a[i], near[i], None if keep is None else keep[i, 0])
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def _compose_frame(self, dst: np.ndarray, x: np.ndarray, a: np.ndarray, near: torch.Tensor,
                       keep: torch.Tensor | None, clip: bool = True) -> None:
        """One picture x [S, S, C] with its candidates' shares a [K, S, S] -> dst [D, D, C], clipped to
        [-1, 1] with `clip` (without it, for a saturating conversion to 8 bits). A candidate lending
        nothing at the generator's size is skipped before anything is made at the detail size
        (bilinear never exceeds its source), so between memories a frame costs little more than its
        upscaling."""
        d, c = self.size, x.shape[2]
        up = cv2.resize(np.ascontiguousarray(x), (d, d), dst if c > 1 else dst[..., 0], interpolation=cv2.INTER_CUBIC)
        if up.ctypes.data != dst.ctypes.data:
            dst[...] = up.reshape(d, d, c)      # OpenCV wrote elsewhere (it may, for a view it cannot use)
        for j in range(a.shape[0]):
            if float(a[j].max()) < NEGLIGIBLE:
                continue
            if keep is None and c > 1:      # each channel's weight made at the detail size at once
                w = cv2.resize(cv2.merge([a[j]] * c), (d, d), interpolation=cv2.INTER_LINEAR)
            else:                           # one plane, what detail_loss keeps of it, then each channel's
                w = self._weight(a[j], None if keep is None else keep.numpy())
                if w is None:
                    continue
            if w.ndim == 2 and c > 1:
                w = cv2.merge([w] * c)
            cv2.accumulateProduct(w, self.residual(int(near[j])), dst)        # dst += w * residual
        if clip:
            np.clip(dst, -1.0, 1.0, out=dst)


def to_uint8(x, rgb: bool = False, finite: bool = False) -> np.ndarray:
    """Pictures in [-1, 1] (NaN/Inf tolerated) -> uint8 levels, channels last: a float32 numpy array
    [..., H, W, C] as it is, a tensor [..., C, H, W] moved there; grey stays one channel, or with
    `rgb` is repeated on three. On a CPU one saturating OpenCV pass (rounding half to even, as
    torch.round): 1/16 of torch's time there. `finite`: the caller knows there is no NaN or Inf."""
    if isinstance(x, torch.Tensor) and (x.device.type != "cpu" or x.dtype != torch.float32):
        t = torch.nan_to_num(x.detach().float(), nan=0.0, posinf=1.0, neginf=-1.0)
        u8 = np.ascontiguousarray(((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1).cpu().numpy())
    else:
        if isinstance(x, torch.Tensor):
            x = x.detach().movedim(-3, -1).numpy()                # a view where the memory is channels-last
        hwc = np.ascontiguousarray(x, np.float32)
        if not finite and not np.isfinite(hwc).all():
            hwc = np.clip(np.nan_to_num(hwc, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        rows = hwc.reshape(-1, hwc.shape[-2] * hwc.shape[-1])
        u8 = cv2.addWeighted(rows, 127.5, rows, 0.0, 127.5, dtype=cv2.CV_8U).reshape(hwc.shape)
    if rgb and u8.shape[-1] == 1:
        u8 = np.ascontiguousarray(np.broadcast_to(u8, (*u8.shape[:-1], 3)))
    return u8

"""The output chain (output.py) in torch, on the generator's own device.

On a GPU the small image never comes back to the host on its own: vignette, upscaling, bars or
crop, grain and the conversion to 8 bits run where the generator ran, and the finished frames of a
batch are copied to the host once. `Output` (OpenCV on the CPU) stays the chain for a CPU
machine, where it is faster; this one draws the same frame to within a level or two of it (torch's
bicubic is OpenCV's, a = -0.75 and half-pixel centres, in float instead of fixed point), from the
same grain field seen through the same moving window. A batch is drawn a few frames at a time
(CHUNK_BYTES), so a 4K film's batch of eight does not ask a small GPU for gigabytes.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .output import RGB_TO_YUV, YUV_OFFSET, Output, vignette_mask

MODES = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic", "lanczos": "bicubic"}
CHUNK_BYTES = 1 << 30           # float work space per chunk of frames: eight 1080p frames, two 4K ones


def area_weights(src: int, dst: int) -> torch.Tensor:
    """[dst, src]: each output pixel the mean of the source it covers, fractions of pixels at its
    edges weighed by how much of them it covers — OpenCV's INTER_AREA when shrinking."""
    scale = src / dst
    lo = torch.arange(dst, dtype=torch.float64)[:, None] * scale
    j = torch.arange(src, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(lo + scale, j + 1) - torch.maximum(lo, j)).clamp(min=0)
    return (overlap / scale).float()


class DeviceOutput:
    """Generator images img [N, C, h, w] in [-1, 1] on a device -> screen frames on the host:
    uint8 [H, W, 3] (form "rgb") or YUV 4:2:0 [H * 3/2, W] (form "i420"), as `Output` makes them."""

    def __init__(self, output: Output, device: torch.device | str):
        self.output, self.spec, self.device = output, output.spec, torch.device(device)
        self._vignette: dict[tuple[int, int], torch.Tensor] = {}
        self.grain = None
        if output.grain_halves is not None:   # the CPU chain's field, bright minus dark, one channel
            bright, dark = output.grain_halves
            field = bright[..., 0].astype(np.int16) - dark[..., 0].astype(np.int16)
            self.grain = torch.from_numpy(field).to(self.device)

    def _small(self, img: torch.Tensor) -> torch.Tensor:
        """[N, C, h, w] in [-1, 1] -> [N, 3, h, w] float levels 0..255, vignetted, as Output's uint8 input."""
        x = torch.nan_to_num(img.detach().float(), nan=0.0, posinf=1.0, neginf=-1.0)
        x = ((x.clamp(-1, 1) + 1) * 127.5).round()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.spec.vignette > 0:
            h, w = x.shape[-2:]
            mask = self._vignette.get((h, w))
            if mask is None:
                mask = self._vignette[(h, w)] = torch.from_numpy(
                    vignette_mask(h, w, self.spec.vignette)[..., 0]).to(self.device)
            x = torch.round(x * mask)        # as Output's saturating multiply to uint8
        return x

    def _scaled(self, x: torch.Tensor, sw: int, sh: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        if sw < w:                            # shrinking, as OpenCV's INTER_AREA
            wy, wx = area_weights(h, sh).to(x.device), area_weights(w, sw).to(x.device)
            return wy @ x @ wx.T
        mode = MODES[self.spec.upscale]
        return F.interpolate(x, size=(sh, sw), mode=mode, **({} if mode == "nearest" else {"align_corners": False}))

    def _frames(self, img: torch.Tensor, frame_indices: list[int]) -> torch.Tensor:
        """[N, 3, H, W] float levels, rounded and in range: the RGB frames on the device."""
        x = self._small(img)
        h, w = x.shape[-2:]
        sw, sh, x0, y0 = self.output.placement(h, w)
        W, H = self.spec.width, self.spec.height
        scaled = self._scaled(x, sw, sh).round_().clamp_(0, 255)
        fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x0 + sw), min(H, y0 + sh)
        if (fx0, fy0, fx1, fy1) == (0, 0, W, H) and (x0, y0) == (0, 0) and (sw, sh) == (W, H):
            frame = scaled                    # the picture is the frame
        else:
            frame = torch.zeros((len(x), 3, H, W), device=self.device)
            frame[..., fy0:fy1, fx0:fx1] = scaled[..., fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
            del scaled
        if self.grain is not None:            # on the picture only, the window moving as Output's does
            ph, pw = fy1 - fy0, fx1 - fx0
            for k, i in enumerate(frame_indices):
                dy, dx = Output.grain_window(i, fy0, fx0)
                frame[k, :, fy0:fy1, fx0:fx1] += self.grain[dy:dy + ph, dx:dx + pw]
            frame.clamp_(0, 255)
        return frame

    @torch.inference_mode()
    def __call__(self, img: torch.Tensor, frame_indices: list[int], form: str = "rgb") -> list[np.ndarray]:
        W, H = self.spec.width, self.spec.height
        if form == "i420" and (W % 2 or H % 2):
            raise ValueError(f"YUV 4:2:0 frames need an even width and height, not {W}x{H}")
        img = img.to(self.device)
        per_chunk = max(1, CHUNK_BYTES // (W * H * 3 * 4 * 3))     # the frame, its picture, one temporary
        out = []
        for k in range(0, len(img), per_chunk):
            frames = self._frames(img[k:k + per_chunk], frame_indices[k:k + per_chunk])
            if form == "i420":
                frames = _to_i420(frames)
            else:
                frames = frames.to(torch.uint8).permute(0, 2, 3, 1).contiguous()
            out.extend(frames.cpu().numpy())  # one copy to the host per chunk: per batch, at 1080p
        return out


def _to_i420(frames: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] RGB levels -> uint8 [N, H * 3/2, W] YUV 4:2:0 (BT.601 limited range; chroma the mean
    of each 2x2 block, as swscale's default conversion), OpenCV's I420 layout."""
    n, _, H, W = frames.shape
    m = torch.as_tensor(RGB_TO_YUV, device=frames.device)
    off = torch.as_tensor(YUV_OFFSET, device=frames.device)
    yuv = torch.einsum("ij,njhw->nihw", m, frames) + off[None, :, None, None]
    y = yuv[:, 0].round().clamp(0, 255).to(torch.uint8)
    uv = F.avg_pool2d(yuv[:, 1:], 2).round().clamp(0, 255).to(torch.uint8)       # [N, 2, H/2, W/2]
    out = torch.empty((n, H * 3 // 2, W), dtype=torch.uint8, device=frames.device)
    flat = out.view(n, -1)
    q = (H // 2) * (W // 2)
    flat[:, :H * W] = y.reshape(n, -1)
    flat[:, H * W:H * W + q] = uv[:, 0].reshape(n, -1)
    flat[:, H * W + q:] = uv[:, 1].reshape(n, -1)
    return out

"""Finding faces: the camera's visitors (installation/inputs/presence.py) and the subject of a
person's photograph (training/framing.py).

opencv-python-headless 5 ships neither `cv2.CascadeClassifier` nor the Haar cascade files, so this
is OpenCV's trained LBP frontal-face cascade that scikit-image carries
(`skimage.data.lbp_frontal_face_cascade_filename()`), run by skimage.feature.Cascade: no network.
"""
from __future__ import annotations

import numpy as np

DETECT_SIDE = 320      # the longer side of the grey copy the detector sees
MIN_FACE_PX = 24       # the cascade's window: no smaller face can be found in the copy


class FaceDetector:
    def __init__(self, side: int = DETECT_SIDE, min_face: float = 0.0):
        from skimage import data
        from skimage.feature import Cascade
        self.cascade = Cascade(data.lbp_frontal_face_cascade_filename())
        self.side, self.min_face = side, min_face

    def faces(self, frame: np.ndarray) -> list[dict]:
        """Face boxes (r, c, width, height in the small copy) in an RGB/BGR uint8 frame or a grey one."""
        import cv2
        if frame is None or frame.ndim not in (2, 3) or min(frame.shape[:2]) < 8:
            return []
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame[..., :3], cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        scale = self.side / max(h, w)
        small = cv2.resize(grey, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        small = small.astype(np.float32) / 255.0
        smallest = max(MIN_FACE_PX, int(self.min_face * min(small.shape)))
        return list(self.cascade.detect_multi_scale(img=small, scale_factor=1.2, step_ratio=1,
                                                    min_size=(smallest, smallest), max_size=small.shape))

    def present(self, frame: np.ndarray) -> bool:
        return bool(self.faces(frame))

"""Find a face in video frames with OpenCV's shipped Haar cascade, track it, crop it.

- :func:`detect_faces`: per frame, the frontal-face Haar cascade that OpenCV ships
  (``cv2.data.haarcascades``, ``haarcascade_frontalface_default.xml``; nothing downloaded)
  on the grey frame, scaled first so that its shorter side lies between ``min_side`` (128)
  and ``max_side`` (256) pixels (the cascade's smallest face is 24 pixels; faces under a
  fifth of the shorter side are not sought). Of several detections the largest is
  kept (or, once a face is known, the one nearest the previous). Frames without one get NaN.
- :func:`track_face`: detections -> one square box per frame. The cascade's box is widened by
  ``expand`` and moved down by ``shift`` box sides, so that it holds the chin and the food at
  the mouth (the crop of the simulator's ``face_box``); frames where the cascade missed take
  the box of the nearest frame where it found one; centres and sides are then smoothed over
  time (a running median of ``smooth`` frames, then a running mean of 3). No face in any frame:
  ``InputError("no face found in N frames")``.
- :func:`crop_faces`: the boxes cut out and resized to ``size`` (OpenCV area averaging; a
  box reaching past the border repeats the edge pixels).
- :func:`face_crops`: all three, ``(time, 3, size, size)`` float32 in [0, 1] for a model.

Frames are ``(time, y, x, 3)`` RGB, uint8 or float in [0, 1]. Boxes are ``(time, 4)``
float32 ``x0, y0, x1, y1`` in pixels of the frames (``x1 - x0 == y1 - y0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyro_videossm.errors import InputError

CASCADE = "haarcascade_frontalface_default.xml"
#: The cascade's box -> the crop: widened ``EXPAND`` times, moved down ``SHIFT`` box sides.
#: Measured on simulated eating clips so that the crop matches their true ``face_box``
#: (forehead to below the chin; medians over 16 clips: 1.10 and 0.040).
EXPAND = 1.10
SHIFT = 0.04


@dataclass
class FaceTrack:
    """Square face boxes ``(time, 4)`` (``x0, y0, x1, y1``, pixels), whether the cascade
    found the face in each frame ``(time,)``, and the fraction of frames where it did."""

    boxes: np.ndarray
    detected: np.ndarray

    @property
    def detection_rate(self) -> float:
        return float(np.mean(self.detected)) if len(self.detected) else 0.0


@dataclass
class FaceCrops:
    """Face crops ``(time, 3, size, size)`` float32 in [0, 1] and the track they come from."""

    crops: np.ndarray
    track: FaceTrack

    @property
    def detection_rate(self) -> float:
        return self.track.detection_rate


def _cv2():
    try:
        import cv2
    except ImportError:
        raise InputError("face detection needs OpenCV: pip install 'pyro-videossm[audio]'"
                         ) from None
    return cv2


def haar_cascade():
    """OpenCV's shipped frontal-face Haar cascade (``cv2.CascadeClassifier``)."""
    cv2 = _cv2()
    data = getattr(getattr(cv2, "data", None), "haarcascades", "")
    if not hasattr(cv2, "CascadeClassifier"):
        raise InputError("this OpenCV build has no Haar cascades (OpenCV 5 keeps them in the "
                         "contrib build): pip install opencv-contrib-python-headless")
    cascade = cv2.CascadeClassifier(str(data) + CASCADE)
    if cascade.empty():
        raise InputError(f"OpenCV's Haar cascade {CASCADE} was not found in {data!r} "
                         "(install opencv-contrib-python-headless)")
    return cascade


def as_uint8_frames(frames) -> np.ndarray:
    """Frames ``(time, y, x, 3)``, uint8 or float in [0, 1], as uint8."""
    x = np.asarray(frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise InputError(f"frames must be (time, y, x, 3) RGB, got shape {x.shape}")
    if len(x) == 0:
        raise InputError("no face found in 0 frames")
    if x.dtype == np.uint8:
        return x
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)) or x.min() < -1e-6 or x.max() > 1 + 1e-6:
        raise InputError("float frames must be finite and in [0, 1]")
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def detect_faces(frames, *, min_side: int = 128, max_side: int = 256,
                 min_face: float = 0.2, min_neighbors: int = 3) -> np.ndarray:
    """The cascade's face box in each frame, ``(time, 4)`` float32 ``x0, y0, x1, y1`` in
    pixels of ``frames`` (NaN where none was found).

    Frames are scaled for the search so that their shorter side lies in ``[min_side,
    max_side]`` pixels; faces smaller than ``min_face`` of the shorter side are not sought.
    """
    cv2 = _cv2()
    video = as_uint8_frames(frames)
    cascade = haar_cascade()
    h, w = video.shape[1:3]
    short = min(h, w)
    up = min_side / short if short < min_side else min(1.0, max_side / short)
    smallest = max(24, int(min_face * short * up))
    out = np.full((len(video), 4), np.nan, np.float32)
    previous = None
    for i, frame in enumerate(video):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if up != 1:
            grey = cv2.resize(grey, None, fx=up, fy=up,
                              interpolation=cv2.INTER_LINEAR if up > 1 else cv2.INTER_AREA)
        found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=min_neighbors,
                                         minSize=(smallest, smallest))
        if len(found) == 0:
            continue
        boxes = np.asarray(found, np.float64)
        boxes = np.column_stack([boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2],
                                 boxes[:, 1] + boxes[:, 3]]) / up
        if previous is None:
            j = int(np.argmax(boxes[:, 2] - boxes[:, 0]))
        else:
            j = int(np.argmin(np.abs(boxes - previous).sum(axis=1)))
        out[i] = previous = boxes[j]
    return out


def _fill_nearest(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Rows of ``values`` where ``ok`` is False replaced by the nearest row (in index) where
    it is True (the earlier one on a tie)."""
    idx = np.flatnonzero(ok)
    pos = np.searchsorted(idx, np.arange(len(values)))
    left = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    right = idx[np.clip(pos, 0, len(idx) - 1)]
    t = np.arange(len(values))
    nearest = np.where(np.abs(t - left) <= np.abs(right - t), left, right)
    return values[nearest]


def track_face(frames, *, expand: float = EXPAND, shift: float = SHIFT, smooth: int = 5,
               detections: np.ndarray | None = None) -> FaceTrack:
    """One smooth square face box per frame (see the module doc).

    :param detections: the boxes of :func:`detect_faces`, if already found.
    :raises InputError: ``no face found in N frames``.
    """
    from scipy.ndimage import median_filter, uniform_filter1d

    raw = detect_faces(frames) if detections is None else np.asarray(detections, np.float32)
    found = np.all(np.isfinite(raw), axis=1)
    if not found.any():
        raise InputError(f"no face found in {len(raw)} frames")
    raw = _fill_nearest(raw, found)
    side = np.maximum(raw[:, 2] - raw[:, 0], raw[:, 3] - raw[:, 1])
    cx = 0.5 * (raw[:, 0] + raw[:, 2])
    cy = 0.5 * (raw[:, 1] + raw[:, 3]) + shift * side
    track = np.column_stack([cx, cy, side * expand])
    if smooth > 1 and len(track) > 1:
        track = median_filter(track, size=(min(smooth, len(track)), 1), mode="nearest")
        track = uniform_filter1d(track, size=min(3, len(track)), axis=0, mode="nearest")
    cx, cy, half = track[:, 0], track[:, 1], 0.5 * track[:, 2]
    boxes = np.column_stack([cx - half, cy - half, cx + half, cy + half]).astype(np.float32)
    return FaceTrack(boxes, found)


def crop_faces(frames, boxes: np.ndarray, size: int) -> np.ndarray:
    """Cut ``boxes`` ``(time, 4)`` out of ``frames`` and resize to ``size`` pixels:
    ``(time, size, size, 3)`` uint8 (edge pixels repeated past the border)."""
    cv2 = _cv2()
    video = as_uint8_frames(frames)
    boxes = np.asarray(boxes, np.float64)
    if boxes.shape != (len(video), 4) or not np.all(np.isfinite(boxes)):
        raise InputError(f"boxes must be finite (time, 4) for {len(video)} frames, got "
                         f"{boxes.shape}")
    h, w = video.shape[1:3]
    out = np.empty((len(video), size, size, 3), np.uint8)
    for i, (frame, box) in enumerate(zip(video, boxes, strict=True)):
        x0, y0 = int(np.floor(box[0] + 0.5)), int(np.floor(box[1] + 0.5))
        side = max(1, int(np.floor(box[2] - box[0] + 0.5)))
        pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
        if pad:
            frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        patch = frame[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
        interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
        out[i] = cv2.resize(patch, (size, size), interpolation=interp)
    return out


def face_crops(frames, size: int, **track_options) -> FaceCrops:
    """Detect, track and crop the face: crops ``(time, 3, size, size)`` float32 in [0, 1]."""
    if int(size) != size or size < 8:
        raise InputError(f"crop size must be a whole number >= 8, got {size}")
    track = track_face(frames, **track_options)
    crops = crop_faces(frames, track.boxes, int(size))
    return FaceCrops(crops.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255), track)

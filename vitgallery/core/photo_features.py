"""What is kept of a photo to verify matches: SIFT keypoints and two tiny grey copies.

Indexing computes them beside the model's input (imageio.decode_for_model) and the library keeps
them: the search re-ranks its candidates with the keypoints, and the duplicates scan verifies its pairs
with all three without decoding a photo again. A scan decodes only the photos of the pairs it takes a
closer look at, for SCAN_KEYPOINTS keypoints (duplicates.features.match_photos).

Pure numpy/OpenCV, no torch and no file I/O: decode worker processes import this.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from vitgallery.core.keypoints import KEYPOINT_COUNT, KEYPOINT_LONG_SIDE, Keypoints, extract_keypoints
from vitgallery.core.preprocess import content_box

MIN_KEYPOINT_SIDE = 320  # smaller photos are enlarged to this first, so thumbnails still get keypoints
# A pair is matched on its photos' KEYPOINT_COUNT strongest keypoints; where those agree a little but too
# little to verify (small, smooth or captioned copies: a caption's corners are among the strongest), on
# SCAN_KEYPOINTS (duplicates.features.worth_a_closer_look).
SCAN_KEYPOINTS = 1024
AGREEMENT_SIDE = 160  # long side of the copy compared pixel-wise once aligned
AGREEMENT_WINDOW = 16  # pixels a side of the windows compared
LOOK_SIDE = 96  # long side of the blurred grey copy slid over another photo's when keypoints cannot tell
LOOK_MIN_STD = 2.0  # grey levels: a copy flatter than this (blank, one colour, a plain ramp) has nothing to align

_LOOKS_HEADER = struct.Struct("<2i")  # bytes of the small copy's PNG, of the look copy's


@dataclass(frozen=True)
class PhotoFeatures:
    """What verification needs of one photo."""

    keypoints: Keypoints  # SIFT on the contrast-equalised greyscale decode at a low contrast threshold; strongest first
    small: np.ndarray  # uint8 greyscale, AGREEMENT_SIDE long: compared pixel-wise once aligned
    look: np.ndarray  # uint8 greyscale without its frame, LOOK_SIDE long, blurred: see duplicates.features.look_likeness
    # All SCAN_KEYPOINTS a closer look needs are here (False: only the KEYPOINT_COUNT a library keeps)
    complete: bool = True

    @functools.cached_property
    def plain_look(self) -> bool:
        """Whether the look copy is one grey level or one plain ramp of them (a blank picture, a plain
        gradient): less than LOOK_MIN_STD of it is left once the best plane through its grey levels is taken
        away. Such a picture aligns with every other of its kind, whatever its colours (QA: a navy-to-sky and
        a black-to-orange gradient were "the same photo"). Worked out once: a scan slides a photo over
        several others, and this was 40 % of a slide."""
        look = self.look.astype(np.float32)
        height, width = look.shape
        y, x = np.mgrid[0:height, 0:width]
        plane = np.column_stack([np.ones(look.size), x.ravel(), y.ravel()]).astype(np.float32)
        fitted, *_ = np.linalg.lstsq(plane, look.ravel(), rcond=None)
        return float((look.ravel() - plane @ fitted).std()) < LOOK_MIN_STD

    def looks_to_bytes(self) -> bytes:
        """The two grey copies, for the library: PNG (about 13 KB; 26 KB as they are)."""
        small, look = (_png(self.small), _png(self.look))
        return _LOOKS_HEADER.pack(len(small), len(look)) + small + look

    @classmethod
    def from_stored(cls, keypoints: bytes, looks: bytes) -> PhotoFeatures:
        """The features a library keeps (keypoints from Keypoints.to_bytes, looks from looks_to_bytes).
        Raises ValueError for bytes these cannot have written."""
        return cls.with_looks(Keypoints.from_bytes(keypoints), looks)

    @classmethod
    def with_looks(cls, kp: Keypoints, looks: bytes) -> PhotoFeatures:
        """from_stored of keypoints already read. Raises ValueError for grey copies looks_to_bytes cannot
        have written."""
        if len(looks) < _LOOKS_HEADER.size:
            raise ValueError("damaged grey copies")
        small_length, look_length = _LOOKS_HEADER.unpack_from(looks)
        at = _LOOKS_HEADER.size
        if min(small_length, look_length) < 1 or len(looks) != at + small_length + look_length:
            raise ValueError(f"damaged grey copies: {len(looks)} bytes")
        small = _from_png(looks[at:at + small_length])
        look = _from_png(looks[at + small_length:])
        return cls(kp, small, look, complete=len(kp) < KEYPOINT_COUNT)


def _png(gray: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(gray, np.uint8))
    if not ok:
        raise ValueError(f"cannot encode a {gray.shape} grey copy")
    return data.tobytes()


def _from_png(data: bytes) -> np.ndarray:
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if gray is None or gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("damaged grey copy")
    return gray


def analyse_grey(gray: np.ndarray, *, complete: bool = False) -> PhotoFeatures:
    """The features of a greyscale uint8 photo (its whole picture, frame included): what a library keeps
    (its KEYPOINT_COUNT strongest keypoints), or with `complete` what a closer look uses (SCAN_KEYPOINTS)."""
    if max(gray.shape) < MIN_KEYPOINT_SIDE:
        gray = _resize_long_side(gray, MIN_KEYPOINT_SIDE)
    left, top, right, bottom = content_box(gray)
    look = cv2.GaussianBlur(_resize_long_side(gray[top:bottom, left:right], LOOK_SIDE), (0, 0), 1.0)
    found = closer_keypoints(gray) if complete else equalised_keypoints(gray)
    return PhotoFeatures(found, _resize_long_side(gray, AGREEMENT_SIDE), look,
                         complete=complete or len(found) < KEYPOINT_COUNT)


def equalised_keypoints(gray: np.ndarray) -> Keypoints:
    """The KEYPOINT_COUNT strongest SIFT keypoints of a greyscale photo, strongest first: the strongest of
    its closer_keypoints."""
    return extract_keypoints(_equalised(gray), long_side=KEYPOINT_LONG_SIDE, max_keypoints=KEYPOINT_COUNT,
                             strongest_first=True, low_contrast=True)


def closer_keypoints(gray: np.ndarray) -> Keypoints:
    """SCAN_KEYPOINTS SIFT keypoints of a greyscale photo, strongest first. Equalised local contrast finds
    keypoints in dim, hazy and low-contrast photos too, and a low contrast threshold in smooth ones."""
    return extract_keypoints(_equalised(gray), long_side=KEYPOINT_LONG_SIDE, max_keypoints=SCAN_KEYPOINTS,
                             strongest_first=True, low_contrast=True)


def _equalised(gray: np.ndarray) -> np.ndarray:
    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)  # one per call: not thread-safe


def _resize_long_side(gray: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(gray.shape)
    size = (max(AGREEMENT_WINDOW, round(gray.shape[1] * scale)), max(AGREEMENT_WINDOW, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)

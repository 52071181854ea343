"""Why two photos match: which patches of each are most alike, where the model itself looks, and the
keypoints that one geometric map carries from one photo onto the other.

Computed on demand for one pair (bench/explain.py measures the time); `explain_render` draws it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vitgallery.core.duplicates.features import NOT_GROUPED, GroupedPair, grouped_unverified, same_photo
from vitgallery.core.imageio import (
    DecodeError,
    model_draft_size,
    open_image,
    photo_features,
    squeeze_to_model,
    working_copy,
)
from vitgallery.core.keypoints import (
    VERIFIED_INLIERS,
    KeypointMatch,
    Keypoints,
    match_keypoints,
    matched_points,
)
from vitgallery.core.models import Embedder, PatchFeatures
from vitgallery.core.photo_features import PhotoFeatures
from vitgallery.core.preprocess import content_box

log = logging.getLogger(__name__)

PhotoSource = Path | str | bytes | Image.Image
Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels


@dataclass(frozen=True)
class PhotoPatches:
    """One photo as the model saw it. The patch grids lie over `content` of `image`."""

    image: Image.Image  # the photo, EXIF orientation applied (decoded small: at least 2x the model input)
    content: Box  # the part squeezed to the model input: the photo without its uniform frame
    features: PatchFeatures

    def grid_box(self, row: int, col: int) -> Box:
        """Where patch (row, col) lies in `image`, in pixels."""
        rows, cols = self.features.patches.shape[:2]
        left, top, right, bottom = self.content
        w, h = (right - left) / cols, (bottom - top) / rows
        return (round(left + col * w), round(top + row * h), round(left + (col + 1) * w), round(top + (row + 1) * h))


@dataclass(frozen=True)
class KeypointLines:
    """Keypoints of the two photos that one geometric map carries onto each other, pair by pair."""

    query_xy: np.ndarray  # (n, 2) float32, pixels of the query's `image`
    result_xy: np.ndarray  # (n, 2) float32, pixels of the result's `image`

    def __len__(self) -> int:
        return len(self.query_xy)


@dataclass(frozen=True)
class Explanation:
    query: PhotoPatches
    result: PhotoPatches
    query_heat: np.ndarray  # (rows, cols): each query patch's cosine to its most alike result patch (patch_heat)
    result_heat: np.ndarray  # (rows, cols): the same, the other way
    cosine: float  # the two photos' vectors, in the space the search ranks them in (explain_pair's `project`)
    inliers: int  # keypoints one geometric map carries across (0: none)
    matches: KeypointLines  # those keypoints when they verify the match (>= VERIFIED_INLIERS), else empty
    # How the duplicates check groups a pair its keypoints cannot verify, as the search's ✓ (✓look) does:
    # NOT_GROUPED for any other pair, and where there is no library whitening to judge the cosine in.
    grouped: GroupedPair = NOT_GROUPED
    # Keypoints verify it, but its pictures differ once aligned: the same scene, not the same photo (another
    # subject on the same table), which the search shows without its ✓.
    same_scene: bool = False

    @property
    def verified(self) -> bool:
        return len(self.matches) > 0


def explain_pair(embedder: Embedder, query: PhotoSource, result: PhotoSource, *, attention: bool = False,
                 project: Callable[[np.ndarray], np.ndarray] | None = None,
                 kept: Sequence[PhotoFeatures | None] = (None, None)) -> Explanation:
    """Explain why `result` matches `query`. `attention`: also the CLS attention of each photo
    (PhotoPatches.features.attention; None where the model has none, see ModelSpec.has_attention).
    `project`: the library's whitening (SearchSpace.project), so that the pair's cosine is the one the
    search ranks by (the model's own cosine of two unrelated photos is often 0.7-0.9, more than the
    search gives a copy), and so that a pair too few keypoints verify is judged as the search's ✓ judges
    it; None where the library has no whitening (the duplicates check's weights are for whitened cosines).
    `kept`: the library's own keypoints and grey copies of the query and the result where they are photos
    of it (Library.stored_features), which the search judged the pair on; the others are found as an index
    finds them (photo_features). Raises DecodeError for a file that is not a photo."""
    images = [_open(query, embedder.input_size, "the query"), _open(result, embedder.input_size, "the result")]
    works = [working_copy(image) for image in images]
    # SIFT releases the GIL: both photos' keypoints are found while the model runs.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitgallery-explain-keypoints") as pool:
        looked_at = pool.submit(lambda: [own if own is not None else photo_features(work)
                                         for own, work in zip(kept, works, strict=True)])
        boxes = [content_box(np.asarray(work)) for work in works]
        pixels = np.stack([squeeze_to_model(work.crop(box), embedder.input_size) for work, box in zip(works, boxes)])
        features = embedder.patch_features(pixels, attention=attention)
        query_features, result_features = looked_at.result()
    photos = [PhotoPatches(image, _scaled_box(box, work, image), feats)
              for image, work, box, feats in zip(images, works, boxes, features)]
    query_heat, result_heat = patch_heat(features[0].patches, features[1].patches)
    match = match_keypoints(query_features.keypoints, result_features.keypoints)
    lines = _keypoint_lines(query_features.keypoints, result_features.keypoints, match, photos[0].image, photos[1].image)
    vectors = np.stack([features[0].vector, features[1].vector]).astype(np.float32)
    # The patches are torch's; a library's vectors are its runtime's (an int8 model not yet fitted to a
    # library has none: torch's stand).
    if embedder.runtime != "torch" and not embedder.needs_calibration:
        vectors = embedder.embed_pixels(pixels)
    if project is not None:
        vectors = _unit_rows(project(vectors))
    cosine = float(vectors[0] @ vectors[1])
    grouped = grouped_unverified(query_features, result_features, match, cosine) if project is not None else None
    same_scene = len(lines) > 0 and not same_photo(query_features, result_features, match, cosine)
    return Explanation(photos[0], photos[1], query_heat, result_heat, cosine, match.inliers, lines,
                       grouped or NOT_GROUPED, same_scene)


def patch_heat(query_patches: np.ndarray, result_patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each patch of one photo, its cosine to the most alike patch of the other: ((rows, cols) for
    the query, (rows, cols) for the result), once the pair's mean patch token is taken from every
    patch. Without that, what covers both photos (a plain background, the same light) is the most
    alike of all: bench/explain.py, sem of seeds 1 and 2, 40 pairs each: the hottest patch lies on
    the object in 91% and 99% of the photos centred, 66% and 80% not (44% and 67% of the photos the
    model saw whole)."""
    q = query_patches.reshape(-1, query_patches.shape[-1]).astype(np.float32)
    r = result_patches.reshape(-1, result_patches.shape[-1]).astype(np.float32)
    shared = np.concatenate([q, r]).mean(axis=0)
    cosines = _unit_rows(q - shared) @ _unit_rows(r - shared).T
    return (cosines.max(axis=1).reshape(query_patches.shape[:2]),
            cosines.max(axis=0).reshape(result_patches.shape[:2]))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def _open(source: PhotoSource, input_size: int, role: str) -> Image.Image:
    """The decoded photo; a DecodeError names which of the two could not be read (its path, else its role)."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    try:
        return open_image(source if isinstance(source, bytes) else Path(source), draft_size=model_draft_size(input_size))
    except DecodeError as exc:
        raise DecodeError(f"{role if isinstance(source, bytes) else source}: {exc}") from exc


def _scaled_box(box: Box, work: Image.Image, image: Image.Image) -> Box:
    """A box in the working copy's pixels, in the image's."""
    sx, sy = image.width / work.width, image.height / work.height
    left, top, right, bottom = box
    return (round(left * sx), round(top * sy), round(right * sx), round(bottom * sy))


def _keypoint_lines(query: Keypoints, result: Keypoints, match: KeypointMatch, query_image: Image.Image,
                    result_image: Image.Image) -> KeypointLines:
    query_xy, result_xy = matched_points(query, result, match)
    if match.inliers < VERIFIED_INLIERS:
        query_xy, result_xy = np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    # Keypoints are found on a copy at most KEYPOINT_LONG_SIDE long: back to the images' pixels.
    scale_q = np.array([query_image.width / query.width, query_image.height / query.height], np.float32)
    scale_r = np.array([result_image.width / result.width, result_image.height / result.height], np.float32)
    return KeypointLines(query_xy * scale_q, result_xy * scale_r)

"""The features a scan decodes, kept in a temporary file so memory stays bounded."""

from __future__ import annotations

import struct
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from vitgallery.core.duplicates.features import PhotoFeatures
from vitgallery.core.keypoints import SIFT_DIM, Keypoints

FEATURES_IN_MEMORY = 1024  # photos' features a scan holds in memory, of each kind (kept ~50 KB a photo, decoded ~160 KB)


class SpilledFeatures:
    """The PhotoFeatures a scan decodes, written once to an unnamed temporary file in `folder` and
    read back through an LRU of `capacity` photos: a scan's memory stays bounded whatever the library's
    size (~160 KB a photo on disk instead of in memory). The file disappears when closed, or with the
    process. Only the thread that owns it calls it."""

    _HEADER = struct.Struct("<7i")  # keypoints, their image's width and height, small h w, look h w

    def __init__(self, folder: Path, capacity: int = FEATURES_IN_MEMORY) -> None:
        self._file = tempfile.TemporaryFile(dir=folder, prefix="vitgallery-scan-")
        self._where: dict[int, tuple[int, int]] = {}  # file id -> (offset, length)
        self._end = 0
        self._recent: OrderedDict[int, PhotoFeatures] = OrderedDict()
        self._capacity = max(1, capacity)

    def __contains__(self, file_id: int) -> bool:
        return file_id in self._where

    def add(self, file_id: int, features: PhotoFeatures) -> None:
        kp = features.keypoints
        data = b"".join((
            self._HEADER.pack(len(kp), kp.width, kp.height, *features.small.shape, *features.look.shape),
            kp.xy.astype(np.float32).tobytes(), kp.descriptors.astype(np.uint8).tobytes(),
            np.ascontiguousarray(features.small, np.uint8).tobytes(), np.ascontiguousarray(features.look, np.uint8).tobytes(),
        ))
        self._file.write(data)
        self._file.flush()  # a full disk shows here, as an OSError for the caller, not at a later read
        self._where[file_id] = (self._end, len(data))
        self._end += len(data)
        self._remember(file_id, features)

    def get(self, file_id: int) -> PhotoFeatures:
        found = self._recent.get(file_id)
        if found is not None:
            self._recent.move_to_end(file_id)
            return found
        offset, length = self._where[file_id]
        self._file.seek(offset)
        data = self._file.read(length)
        self._file.seek(self._end)  # where the next add writes
        n, width, height, small_h, small_w, look_h, look_w = self._HEADER.unpack_from(data)
        at = self._HEADER.size
        xy = np.frombuffer(data, np.float32, 2 * n, at).reshape(n, 2)
        at += 8 * n
        descriptors = np.frombuffer(data, np.uint8, SIFT_DIM * n, at).reshape(n, SIFT_DIM)
        at += SIFT_DIM * n
        small = np.frombuffer(data, np.uint8, small_h * small_w, at).reshape(small_h, small_w)
        at += small_h * small_w
        look = np.frombuffer(data, np.uint8, look_h * look_w, at).reshape(look_h, look_w)
        features = PhotoFeatures(Keypoints(xy, descriptors, width, height), small, look)
        self._remember(file_id, features)
        return features

    def _remember(self, file_id: int, features: PhotoFeatures) -> None:
        self._recent[file_id] = features
        while len(self._recent) > self._capacity:
            self._recent.popitem(last=False)

    def close(self) -> None:
        self._file.close()
        self._recent.clear()

"""Searching one library: the query's vector and keypoints, the nearest photos, the geometric re-rank.

A photo of the library is searched with its stored vector and keypoints (no model needed); any other
image is decoded, shrunk once and embedded, its SIFT keypoints found beside the model's forward pass.
The top RERANK_CANDIDATES by cosine in the library's whitened space are then verified against the
query's keypoints, and the geometrically verified ones move up (core.rerank).

A search can also use a region of the query alone (core.region: it is cut out and embedded as a photo
of its own), and be refined by photos marked "more like this" / "not this" (core.refine).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from vitgallery.core.duplicates.features import (
    NOT_GROUPED,
    GroupedPair,
    grouped_unverified,
    may_be_grouped,
    same_photo,
)
from vitgallery.core.errors import EmptyLibrary, LibraryError, QueryNeedsModel
from vitgallery.core.imageio import DecodeError, model_draft_size, open_image, photo_features, working_copy
from vitgallery.core.index_cache import IndexCache, SearchSpace
from vitgallery.core.keypoints import VERIFIED_INLIERS, KeypointMatch, Keypoints, match_against
from vitgallery.core.models import Embedder
from vitgallery.core.photo_features import PhotoFeatures
from vitgallery.core.refine import refined_query
from vitgallery.core.region import Region, region_image
from vitgallery.core.rerank import LOOKS_SIMILAR, rerank
from vitgallery.core.scan import missing_file_reason, root_is_available
from vitgallery.core.store import FileRow, Store

log = logging.getLogger(__name__)

RERANK_CANDIDATES = 50

QueryImage = Path | str | bytes | Image.Image


@dataclass(frozen=True)
class SearchHit:
    path: Path
    score: float  # what the ranking used, higher is more similar
    cosine: float
    inliers: int | None  # geometric-verification inliers, None when not verified
    file_id: int
    # keypoints verify it, but the pictures differ once aligned: another subject on the same background
    same_scene_only: bool = False
    # too few keypoints to verify it, but the duplicates check groups it with the query at its default
    # threshold (core.duplicates.features.grouped_unverified): the share of the overlap its few keypoints
    # align that agrees (`agreement`), or, for a smooth picture, its grey levels' correlation (`likeness`)
    agreement: float | None = None
    likeness: float | None = None

    @property
    def verified(self) -> bool:
        """The same photo (a copy, an edit, a crop): keypoints that one geometric map carries onto the
        query and pictures that agree under it, or a pair the duplicates check groups on fewer keypoints or,
        for a smooth picture, on grey levels that align."""
        by_points = self.inliers is not None and self.inliers >= VERIFIED_INLIERS and not self.same_scene_only
        return by_points or self.agreement is not None or self.likeness is not None

    @property
    def looks_similar(self) -> bool:
        """Verified, or scored as mostly the same kind of picture (core.rerank.LOOKS_SIMILAR)."""
        return self.verified or self.score >= LOOKS_SIMILAR


@dataclass(frozen=True)
class _Query:
    vector: np.ndarray  # raw, as the model gives it
    own_id: int | None  # when it is a photo of the library
    keypoints: Keypoints | None  # None: not verified
    # with its grey copies, to tell the same photo from the same scene (None in a library indexed
    # before it kept them: verified by keypoints alone)
    features: PhotoFeatures | None = None


class LibrarySearch:
    """Answers queries against one library; safe to use from several threads at once."""

    def __init__(self, root: Path, store: Store, cache: IndexCache) -> None:
        self.root = root
        self.store = store
        self.cache = cache
        self._background: tuple[int, float] | None = None  # (store generation, mean pairwise cosine)

    def search(self, query: QueryImage, *, k: int = 20, embedder: Embedder | None = None,
               verify: bool = True, region: Region | None = None, like: Sequence[Path | str] = (),
               unlike: Sequence[Path | str] = ()) -> list[SearchHit]:
        """The k most similar photos, best first. `verify=False` skips the keypoint re-rank.

        `region`: search with that part of the query alone (always embedded: needs the embedder).
        `like`, `unlike`: photos of this library marked "more like this" and "not this"; the query moves
        towards the first and away from the others (refine.refined_query), which leave the results.
        A query that is a photo of the library is left out of its own results.
        """
        space = self.cache.space()
        if space is None or len(space.index) == 0:
            raise EmptyLibrary()
        if region is None:
            asked = self._query_features(query, embedder, verify)
        else:
            asked = self._region_features(query, region, embedder, verify)
        vector = space.project(asked.vector[None, :])[0]
        left_out = set() if asked.own_id is None else {asked.own_id}
        if like or unlike:
            vector, unliked = self._refined(vector, like, unlike, space)
            left_out |= unliked
        wanted = max(k, RERANK_CANDIDATES) if verify else k
        labels, sims = space.index.query(vector[None, :], wanted + len(left_out))
        rows = self.store.files_by_ids(labels[0])
        cosines = {int(label): float(sim) for label, sim in zip(labels[0], sims[0])
                   if int(label) not in left_out and int(label) in rows}
        ids = list(cosines)  # best first
        inliers: dict[int, int] = {}
        same_scene: set[int] = set()
        grouped: dict[int, GroupedPair] = {}
        if asked.keypoints is not None:
            stored = self.store.keypoints(ids[:RERANK_CANDIDATES])
            readable = {label: found for label, data in stored.items() if (found := _keypoints(data)) is not None}
            matches = dict(zip(readable, match_against(asked.keypoints, list(readable.values())), strict=True))
            inliers = {label: match.inliers for label, match in matches.items()}
            same_scene, grouped = self._judged_by_pictures(asked.features, matches, readable, cosines,
                                                           whitened=space.whitening is not None)
        background = 0.0 if space.whitening is not None else self._raw_background()
        ranked, scores = rerank(np.array(ids, dtype=np.int64), np.array([cosines[i] for i in ids]),
                                np.array([inliers.get(i, 0) for i in ids]), background=background,
                                same_scene_only=np.array([i in same_scene for i in ids], dtype=bool),
                                grouped=np.array([i in grouped for i in ids], dtype=bool))
        return [SearchHit(self.root / rows[label].path, float(score), cosines[label], inliers.get(label), label,
                          label in same_scene, *(grouped.get(label) or NOT_GROUPED))
                for label, score in zip(ranked[:k].tolist(), scores[:k].tolist())]

    def _judged_by_pictures(self, query: PhotoFeatures | None, matches: dict[int, KeypointMatch],
                            keypoints: dict[int, Keypoints], cosines: dict[int, float],
                            whitened: bool) -> tuple[set[int], dict[int, GroupedPair]]:
        """What the candidates' grey copies say beside their keypoint matches (id -> match; their keypoints,
        read already): (those the keypoints verify whose pictures differ once aligned: the same scene, not
        the same photo, core.duplicates.features.same_photo; those with too few keypoints to verify that the
        duplicates check groups with the query at its default threshold, id -> how, grouped_unverified:
        without that copies the Duplicates page grouped had no ✓ here, 5 of 7 of a smooth wallpaper's).
        `whitened`: the cosines are the whitened space's, which the duplicates check's weights are for.
        A candidate without readable grey copies keeps what its keypoints say."""
        if query is None:
            return set(), {}
        verified = {label: match for label, match in matches.items() if match.inliers >= VERIFIED_INLIERS}
        few = [label for label, match in matches.items() if whitened and may_be_grouped(match.inliers, cosines[label])]
        differ, grouped = set(), {}
        for label, looks in self.store.looks([*verified, *few]).items():
            try:
                candidate = PhotoFeatures.with_looks(keypoints[label], looks)
            except ValueError:
                continue  # damaged grey copies
            if label in verified and not same_photo(query, candidate, verified[label], cosines[label]):
                differ.add(label)
            elif label not in verified and (pair := grouped_unverified(query, candidate, matches[label],
                                                                       cosines[label])) is not None:
                grouped[label] = pair
        return differ, grouped

    def _raw_background(self) -> float:
        """What two unrelated photos score before the whitening is fitted (a library's first indexing
        run, or one too small to fit it): their expected cosine, the squared length of the mean vector
        (0.67 on the benchmark's corpora). Computed again only when the photos changed."""
        generation = self.store.generation
        if self._background is None or self._background[0] != generation:
            mean = self.store.mean_vector()
            value = 0.0 if mean is None else float(np.clip(mean @ mean, 0.0, 0.99))
            self._background = (generation, value)
        return self._background[1]

    def _query_features(self, query: QueryImage, embedder: Embedder | None, with_keypoints: bool) -> _Query:
        """The query's vector, its own id when it is a photo of the library, keypoints when asked."""
        if isinstance(query, (str, Path)):
            path = Path(query).expanduser().absolute()
            own = self.stored_row(path)
            if own is not None:
                stored = self.store.vectors([own.id]).get(own.id)
                if stored is not None and not with_keypoints:
                    return _Query(stored, own.id, None)
                if stored is not None:
                    return _Query(stored, own.id, *self._stored_features(own.id))
        embedder = self._usable(query, embedder)
        image = query if isinstance(query, Image.Image) else open_image(
            query if isinstance(query, bytes) else Path(query), draft_size=model_draft_size(embedder.input_size))
        if image.width == 0 or image.height == 0:
            raise DecodeError("image is 0x0")
        return _embedded(image, embedder, with_keypoints, None)

    def _stored_features(self, file_id: int) -> tuple[Keypoints | None, PhotoFeatures | None]:
        """(keypoints, features with grey copies) the library keeps of one of its photos."""
        kept = self.store.photo_features([file_id]).get(file_id)
        if kept is not None:
            try:
                features = PhotoFeatures.from_stored(*kept)
                return features.keypoints, features
            except ValueError:
                pass  # damaged grey copies: its keypoints alone, if they read
        data = self.store.keypoints([file_id]).get(file_id)
        return None if data is None else _keypoints(data), None

    def _region_features(self, query: QueryImage, region: Region, embedder: Embedder | None,
                         with_keypoints: bool) -> _Query:
        """_query_features of a region of the query: cut out and embedded as a photo of its own."""
        embedder = self._usable(query, embedder)
        source = Path(query).expanduser() if isinstance(query, (str, Path)) else query
        own = self.stored_row(source.absolute()) if isinstance(source, Path) else None
        return _embedded(region_image(source, region, embedder.input_size), embedder, with_keypoints,
                         None if own is None else own.id)

    def _usable(self, query: QueryImage, embedder: Embedder | None) -> Embedder:
        """The embedder, once sure that it can embed `query` for this library."""
        if isinstance(query, (str, Path)) and not Path(query).expanduser().exists():
            raise LibraryError(missing_file_reason(Path(query).expanduser()))  # callers name the query before it
        if embedder is None:
            raise QueryNeedsModel("this query is not a photo of the library, so a model is needed to embed it")
        model_signature = self.store.get_meta("model_signature")
        if embedder.signature != model_signature:
            raise LibraryError(f"the library was indexed with {model_signature}, not {embedder.signature}")
        return embedder

    def _refined(self, vector: np.ndarray, like: Sequence[Path | str], unlike: Sequence[Path | str],
                 space: SearchSpace) -> tuple[np.ndarray, set[int]]:
        """(the query, in the search space, moved by the marked photos; the ids of those marked "not this")."""
        liked, unliked = self._marked(like), self._marked(unlike)

        def projected(ids: list[int]) -> np.ndarray:
            if not ids:
                return np.zeros((0, len(vector)), np.float32)
            stored = self.store.vectors(ids)
            return space.project(np.stack([stored[i] for i in ids]))

        return refined_query(vector, projected(liked), projected(unliked)), set(unliked)

    def _marked(self, paths: Sequence[Path | str]) -> list[int]:
        """The ids of marked photos; LibraryError for one that is not (or no longer) a photo of the library."""
        ids = []
        for path in paths:
            row = self.stored_row(Path(path).expanduser().absolute())
            if row is None or not row.has_vector:
                raise LibraryError(f"{path} is not a photo of this library (or changed since it was indexed): "
                                   "only its photos can be marked")
            ids.append(row.id)
        return ids

    def stored_features(self, path: Path) -> PhotoFeatures | None:
        """The keypoints and grey copies kept of a photo of the library (absolute path) unchanged since it
        was indexed, what a search judges it on; None for any other image, or where they do not read."""
        row = self.stored_row(path)
        return None if row is None else self._stored_features(row.id)[1]

    def stored_row(self, path: Path) -> FileRow | None:
        """The library's row of a photo (absolute path) unchanged since it was embedded, else None."""
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return None
        row = self.store.file_by_path(rel)
        if row is None:
            return None
        try:
            st = path.stat()
        except OSError:
            # offline (an unplugged drive): its stored vector still stands for it; deleted: it is gone
            return row if self._out_of_reach(rel) else None
        return row if (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns) else None

    def _out_of_reach(self, rel: str) -> bool:
        """Whether a photo of the library that is not there cannot be reached now, rather than deleted: its
        folder is not there (the photo folder or a drive under it unplugged, a link to one), or is the empty
        mount point of a drive the library saw mounted there."""
        if not root_is_available((self.root / rel).parent):
            return True
        return any(PurePosixPath(rel).is_relative_to(mount) and not os.path.ismount(self.root / mount)
                   for mount in self.store.mount_points())


def _keypoints(data: bytes) -> Keypoints | None:
    """Stored keypoints, None when damaged (the photo is then ranked without verification)."""
    try:
        return Keypoints.from_bytes(data)
    except (ValueError, TypeError):
        log.warning("damaged keypoints in the library database (vitgallery repair removes them)")
        return None


def _embedded(image: Image.Image, embedder: Embedder, with_keypoints: bool, own_id: int | None) -> _Query:
    """The query of a decoded image: its vector, and its keypoints and grey copies when asked."""
    image = working_copy(image)  # shrunk once for the model and the keypoints alike
    if not with_keypoints:
        return _Query(embedder.embed_images([image])[0], own_id, None)
    # SIFT and the model both release the GIL: finding the keypoints beside the model's forward
    # pass takes them off the query's critical path when a core is free.
    grey = image.convert("L")  # here: the model reads `image` meanwhile
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitgallery-query-keypoints") as pool:
        features = pool.submit(photo_features, grey)
        vector = embedder.embed_images([image])[0]
        found = features.result()
    return _Query(vector, own_id, found.keypoints, found)

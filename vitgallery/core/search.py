"""Searching one library: the query's vector and keypoints, the nearest photos, the geometric re-rank.

A photo of the library is searched with its stored vector and keypoints (no model needed); any other
image is decoded, shrunk once and embedded, its SIFT keypoints found beside the model's forward pass.
The top RERANK_CANDIDATES by cosine in the library's whitened space are then verified against the
query's keypoints, and the geometrically verified ones move up (core.rerank).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vitgallery.core.errors import LibraryError, QueryNeedsModel
from vitgallery.core.imageio import DecodeError, grey_keypoints, model_draft_size, open_image, working_copy
from vitgallery.core.index_cache import IndexCache
from vitgallery.core.keypoints import VERIFIED_INLIERS, Keypoints, verify_pair
from vitgallery.core.models import Embedder
from vitgallery.core.rerank import LOOKS_SIMILAR, rerank
from vitgallery.core.store import FileRow, Store

RERANK_CANDIDATES = 50

QueryImage = Path | str | bytes | Image.Image


@dataclass(frozen=True)
class SearchHit:
    path: Path
    score: float  # what the ranking used, higher is more similar
    cosine: float
    inliers: int | None  # geometric-verification inliers, None when not verified
    file_id: int

    @property
    def verified(self) -> bool:
        """Keypoints that one geometric map carries onto the query: the same photo (a copy, an edit, a crop)."""
        return self.inliers is not None and self.inliers >= VERIFIED_INLIERS

    @property
    def looks_similar(self) -> bool:
        """Verified, or scored as mostly the same kind of picture (core.rerank.LOOKS_SIMILAR)."""
        return self.verified or self.score >= LOOKS_SIMILAR


class LibrarySearch:
    """Answers queries against one library; safe to use from several threads at once."""

    def __init__(self, root: Path, store: Store, cache: IndexCache) -> None:
        self.root = root
        self.store = store
        self.cache = cache
        self._background: tuple[int, float] | None = None  # (store generation, mean pairwise cosine)

    def search(self, query: QueryImage, *, k: int = 20, embedder: Embedder | None = None,
               verify: bool = True) -> list[SearchHit]:
        """The k most similar photos, best first. `verify=False` skips the keypoint re-rank."""
        space = self.cache.space()
        if space is None or len(space.index) == 0:
            raise LibraryError("the library is empty: index a folder first")
        raw, own_id, keypoints = self._query_features(query, embedder, verify)
        vector = space.project(raw[None, :])[0]
        wanted = max(k, RERANK_CANDIDATES) if verify else k
        labels, sims = space.index.query(vector[None, :], wanted + (1 if own_id is not None else 0))
        rows = self.store.files_by_ids(labels[0])
        cosines = {int(label): float(sim) for label, sim in zip(labels[0], sims[0])
                   if int(label) != own_id and int(label) in rows}
        ids = list(cosines)  # best first
        inliers: dict[int, int] = {}
        if keypoints is not None:
            stored = self.store.keypoints(ids[:RERANK_CANDIDATES])
            inliers = {label: verify_pair(keypoints, Keypoints.from_bytes(data)) for label, data in stored.items()}
        background = 0.0 if space.whitening is not None else self._raw_background()
        ranked, scores = rerank(np.array(ids, dtype=np.int64), np.array([cosines[i] for i in ids]),
                                np.array([inliers.get(i, 0) for i in ids]), background=background)
        return [SearchHit(self.root / rows[label].path, float(score), cosines[label], inliers.get(label), label)
                for label, score in zip(ranked[:k].tolist(), scores[:k].tolist())]

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

    def _query_features(self, query: QueryImage, embedder: Embedder | None,
                        with_keypoints: bool) -> tuple[np.ndarray, int | None, Keypoints | None]:
        """(raw vector, the query's own id when it is a photo of the library, keypoints when asked)."""
        if isinstance(query, (str, Path)):
            path = Path(query).expanduser().absolute()
            own = self._stored_row(path)
            if own is not None:
                stored = self.store.vectors([own.id]).get(own.id)
                if stored is not None:
                    data = self.store.keypoints([own.id]).get(own.id) if with_keypoints else None
                    return stored, own.id, None if data is None else Keypoints.from_bytes(data)
        if isinstance(query, (str, Path)) and not Path(query).expanduser().exists():
            raise LibraryError(f"no such file: {query}")
        if embedder is None:
            raise QueryNeedsModel("this query is not a photo of the library, so a model is needed to embed it")
        model_signature = self.store.get_meta("model_signature")
        if embedder.signature != model_signature:
            raise LibraryError(f"the library was indexed with {model_signature}, not {embedder.signature}")
        image = query if isinstance(query, Image.Image) else open_image(
            query if isinstance(query, bytes) else Path(query), draft_size=model_draft_size(embedder.input_size))
        if image.width == 0 or image.height == 0:
            raise DecodeError("image is 0x0")
        image = working_copy(image)  # shrunk once for the model and the keypoints alike
        if not with_keypoints:
            return embedder.embed_images([image])[0], None, None
        # SIFT and the model both release the GIL: finding the keypoints beside the model's forward
        # pass takes them off the query's critical path when a core is free.
        gray = np.asarray(image.convert("L"))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitgallery-query-keypoints") as pool:
            keypoints = pool.submit(grey_keypoints, gray)
            return embedder.embed_images([image])[0], None, keypoints.result()

    def _stored_row(self, path: Path) -> FileRow | None:
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
            return row  # offline (an unplugged drive): its stored vector still stands for it
        return row if (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns) else None

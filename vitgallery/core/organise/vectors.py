"""What arranging, grouping and sorting share: photos' vectors in the library's search space, progress
reports, and cancellation.

A photo of the library brings its stored vector; any other photo (an unsorted folder elsewhere, a new
example) is decoded and embedded with the library's model, the way a search query is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitgallery.core.imageio import DecodeError, model_draft_size, open_image, working_copy
from vitgallery.core.library import Library
from vitgallery.core.models import Embedder
from vitgallery.core.scan import scan_root

log = logging.getLogger(__name__)

EMBED_BATCH = 16  # photos per model call for photos outside the library (the CPU plan's batch)


class OrganiseError(Exception):
    """A problem the user must act on (a folder that is not there, too few examples...); nothing changed."""


class OrganiseCancelled(Exception):
    """The cancel event was set: the job stopped and changed nothing."""


@dataclass(frozen=True)
class OrganiseProgress:
    # "embedding" (photos outside the library), "training" (the classifier's epochs), "arranging",
    # "grouping", "suggesting"
    phase: str
    done: int
    total: int


ProgressCallback = Callable[[OrganiseProgress], None]
EmbedderLoader = Callable[[], Embedder]  # called only when a photo outside the library needs the model


@dataclass
class PhotoVectors:
    """Photos and their vectors (row i belongs to paths[i]), and the files that could not be read."""

    paths: list[Path]
    vectors: np.ndarray
    problems: list[tuple[Path, str]] = field(default_factory=list)


def step(progress: ProgressCallback | None, cancel: threading.Event | None, phase: str, done: int, total: int) -> None:
    """Report progress, and stop (OrganiseCancelled) when the cancel event is set."""
    if progress is not None:
        progress(OrganiseProgress(phase, done, total))
    if cancel is not None and cancel.is_set():
        raise OrganiseCancelled(f"cancelled while {phase}")


def unreadable(exc: DecodeError | OSError) -> str:
    """Why a photo could not be read, for the list of files left out."""
    return exc.reason if isinstance(exc, DecodeError) else f"cannot read file: {exc.strerror or exc}"


def photos_in(folder: Path, *, leave_out: Iterable[Path] = ()) -> list[Path]:
    """The photos under a folder (hidden ones skipped, as indexing does), except those under `leave_out`."""
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise OrganiseError(f"{folder} is not a folder")
    excluded = [Path(f).expanduser().absolute() for f in leave_out]
    paths = [folder / found.path for found in scan_root(folder).files]
    return [p for p in paths if not any(p.is_relative_to(other) for other in excluded)]


def vectors_for(library: Library, paths: list[Path], load_embedder: EmbedderLoader | None, *,
                progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> PhotoVectors:
    """The photos' vectors in the library's search space: stored ones for photos of the library, the
    model's for the others (decoded like a search query). Unreadable files go to `problems`."""
    space = library.search_space()
    if space is None:
        raise OrganiseError("the library is empty: index a folder first")
    stored = library.stored_vectors(paths)
    outside = [p for p in paths if p not in stored]
    embedded: dict[Path, np.ndarray] = {}
    problems: list[tuple[Path, str]] = []
    if outside:
        if load_embedder is None:
            raise OrganiseError(f"{len(outside)} photos are not in the library, and no model was given to embed them")
        embedder = load_embedder()
        step(progress, cancel, "embedding", 0, len(outside))
        for start in range(0, len(outside), EMBED_BATCH):
            chunk = outside[start:start + EMBED_BATCH]
            images, readable = [], []
            for path in chunk:
                try:
                    images.append(working_copy(open_image(path, draft_size=model_draft_size(embedder.input_size))))
                    readable.append(path)
                except (DecodeError, OSError) as exc:
                    problems.append((path, unreadable(exc)))
            if images:
                embedded.update(zip(readable, embedder.embed_images(images)))
            step(progress, cancel, "embedding", min(start + EMBED_BATCH, len(outside)), len(outside))
    kept = [p for p in paths if p in stored or p in embedded]
    if not kept:
        return PhotoVectors([], np.zeros((0, 0), np.float32), problems)
    raw = np.stack([stored[p] if p in stored else embedded[p] for p in kept])
    return PhotoVectors(kept, space.project(raw), problems)

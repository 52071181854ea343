"""Sorting photos into folders by example: the user's sorted subfolders are the classes.

The examples' vectors (the frozen ViT's, in the library's search space) train a small classifier
head: cross-entropy, AdamW, a few epochs over mini-batches, with a part of the examples held out to
measure its accuracy. A k-nearest-neighbour vote over the same vectors is measured on the same
held-out part, and the better of the two, refitted on every example, suggests a folder and a
confidence for each unsorted photo; below a confidence threshold the suggestion is "not sure".
With `finetune`, the model's last block is fine-tuned with a head too (finetune.py), measured on the
same held-out part, and kept only where it beats both. Accepted suggestions are moved as one logged
action (Library.undo puts them back).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vitgallery.core.duplicates.actions import ActionReport
from vitgallery.core.duplicates.scan import LOOK_FROM_WHITENED
from vitgallery.core.library import Library
from vitgallery.core.organise.finetune import LastBlockTuner, TunedClassifier
from vitgallery.core.organise.vectors import (
    EmbedderLoader,
    OrganiseError,
    ProgressCallback,
    photos_in,
    step,
    vectors_for,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# The head, its training and the vote: chosen on the sem corpora of seeds 1 and 2 (bench/organise.py sort,
# 5 splits each; docs/benchmarks.md). Epochs 10/30/100, learning rates 0.01/0.03, scales 10/16/30, k 5/10/20
# and temperatures 0.02/0.05/0.1 all land within a few points of each other there.
HEAD_EPOCHS = 10
HEAD_BATCH = 32
HEAD_LEARNING_RATE = 1e-2
HEAD_WEIGHT_DECAY = 1e-4
HEAD_LOGIT_SCALE = 16.0  # cosine classifier: logits are scale x cosine to each class's weight vector
VALIDATION_SHARE = 0.2  # of each class's examples held out (classes with one example keep it)
KNN_NEIGHBOURS = 10
KNN_TEMPERATURE = 0.1  # each neighbour's vote is exp(cosine / T)
KNN_WINS_BY = 2  # held-out examples the vote must sort right beyond the head's to be chosen
# Below these confidences a suggestion is "not sure": the head's 0.95 was right on 96 % of the sure ones
# on seeds 1 and 2 (0.9: 91 %); the vote's confidence ranks worse (0.95: 81 %). The fine-tuned model's
# head is the same cosine head.
CONFIDENT_FROM = {"head": 0.95, "knn": 0.95, "finetuned": 0.95}
# A classifier picks among the folders even for a photo like none of them (a house, with only Animals and
# Food to choose from, went to Food at 99 %). So a sure photo must also be as close to an example of its
# folder as that folder's examples are to each other: at least the lower quartile of their own nearest
# neighbours' similarity (bench/organise.py sort-open). Photos of categories without a folder, 2 folders of
# at most 4 examples on the sem corpora of seeds 1 and 2 (20 splits each): sure 27.8 / 24.8 % -> 22.6 /
# 21.2 %; the folders' own photos sure 54.7 / 65.2 % -> 46.6 / 60.9 % (right among them 92-93 % either way).
LIKE_THE_EXAMPLES_QUANTILE = 0.25
MIN_EXAMPLES_FOR_SPREAD = 3
# A photo this close to an example in the search space may be a copy of it (the duplicates scan looks
# closer from there): like the examples however alike they are. A folder whose examples are copies of
# one photo set the bar at a copy, and edits of that photo read "not sure" at 100 %. Folders of 3 copies
# of a picture (bench/organise.py sort-copies, seeds 1 and 2, 2 folders): its other copies sure 58.5 /
# 63.0 % -> 90.5 / 93.5 %, other pictures sure 0.0 / 0.1 % -> 0.1 / 0.2 %; sort-open above unchanged.
LIKE_AS_A_COPY = LOOK_FROM_WHITENED


def like_the_examples(vectors: np.ndarray, suggested: np.ndarray, examples: np.ndarray,
                      labels: np.ndarray) -> np.ndarray:
    """Whether each photo (`vectors`, its `suggested` class) is as close to an example of that class as
    the class's examples are to each other (LIKE_THE_EXAMPLES_QUANTILE of their nearest same-class
    neighbours' similarities, at most LIKE_AS_A_COPY). A class of one or two examples tells no spread:
    only a photo as close as a copy of one of them is like them (a folder of one crow had a ferret, a
    mouse and a locomotive sure for it at 95-99 %)."""
    among = examples @ examples.T
    np.fill_diagonal(among, -np.inf)
    floor = np.full(int(labels.max()) + 1, LIKE_AS_A_COPY)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) >= MIN_EXAMPLES_FOR_SPREAD:
            floor[label] = min(np.quantile(among[np.ix_(rows, rows)].max(axis=1), LIKE_THE_EXAMPLES_QUANTILE),
                               LIKE_AS_A_COPY)
    similarities = vectors @ examples.T
    nearest = np.array([similarities[n, labels == label].max() for n, label in enumerate(suggested)])
    return nearest >= floor[suggested] if len(suggested) else np.zeros(0, dtype=bool)


class FolderClassifier(Protocol):
    """Turns vectors into a probability per class."""

    method: str

    def probabilities(self, vectors: np.ndarray) -> np.ndarray: ...


class NeighbourVote:
    """The k most similar examples vote for their class, each by exp(cosine / temperature)."""

    method = "knn"

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, classes: int, *, k: int = KNN_NEIGHBOURS,
                 temperature: float = KNN_TEMPERATURE):
        self.vectors, self.labels, self.classes = vectors, labels, classes
        self.k, self.temperature = k, temperature

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        sims = vectors @ self.vectors.T
        k = min(self.k, sims.shape[1])
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(sims, nearest, axis=1)
        weights = np.exp((near_sims - near_sims.max(axis=1, keepdims=True)) / self.temperature)
        votes = np.zeros((len(vectors), self.classes))
        np.add.at(votes, (np.repeat(np.arange(len(vectors)), k), self.labels[nearest].ravel()), weights.ravel())
        return votes / votes.sum(axis=1, keepdims=True)


class LinearHead:
    """A cosine classifier: one learned direction per class, logits = scale x cosine."""

    method = "head"

    def __init__(self, weights: np.ndarray, scale: float):
        self.weights, self.scale = weights, scale

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = self.scale * (vectors @ self.weights.T)
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The head's matrices are tiny: more threads only wait on each other (30 epochs over 93 examples
    took 22 s with 2 threads on a busy 2-core machine, 0.8 s with one)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_head(vectors: np.ndarray, labels: np.ndarray, classes: int, *, epochs: int = HEAD_EPOCHS,
               learning_rate: float = HEAD_LEARNING_RATE, weight_decay: float = HEAD_WEIGHT_DECAY,
               batch: int = HEAD_BATCH, scale: float = HEAD_LOGIT_SCALE, seed: int = 0,
               progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> LinearHead:
    """Cross-entropy, AdamW, `epochs` passes over shuffled mini-batches; a progress step per epoch."""
    import torch

    with _one_torch_thread():
        generator = torch.Generator().manual_seed(seed)
        x = torch.from_numpy(np.ascontiguousarray(vectors, np.float32))
        y = torch.from_numpy(labels.astype(np.int64))
        # Each class starts at the mean of its examples: training refines it instead of starting from noise.
        start = torch.stack([x[y == c].mean(dim=0) if (y == c).any() else torch.zeros(x.shape[1])
                             for c in range(classes)])
        weights = torch.nn.Parameter(start + 0.01 * torch.randn(start.shape, generator=generator))
        optimiser = torch.optim.AdamW([weights], lr=learning_rate, weight_decay=weight_decay)
        loss_of = torch.nn.CrossEntropyLoss()
        for epoch in range(epochs):
            step(progress, cancel, "training", epoch, epochs)
            for rows in torch.randperm(len(x), generator=generator).split(batch):
                logits = scale * x[rows] @ torch.nn.functional.normalize(weights, dim=1).T
                loss = loss_of(logits, y[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        step(progress, cancel, "training", epochs, epochs)
        return LinearHead(torch.nn.functional.normalize(weights.detach(), dim=1).numpy(), scale)


def held_out_split(labels: np.ndarray, share: float = VALIDATION_SHARE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows): `share` of each class's examples held out, at least one for a class
    of two or more, none for a class of one."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        count = 0 if len(rows) < 2 else max(1, round(share * len(rows)))
        held += rows[:count].tolist()
        train += rows[count:].tolist()
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(held), dtype=np.int64)


@dataclass(frozen=True)
class ClassifierChoice:
    classifier: FolderClassifier  # refitted on every example
    accuracy: dict[str, float]  # each method's accuracy on the held-out examples
    held_out: int


def choose_classifier(vectors: np.ndarray, labels: np.ndarray, classes: int, *, seed: int = 0,
                      progress: ProgressCallback | None = None,
                      cancel: threading.Event | None = None) -> ClassifierChoice:
    """Train the head and the neighbour vote on most examples, measure both on the held-out rest, and
    refit the better one on every example: the vote only where it sorted at least KNN_WINS_BY more
    held-out examples right, since the head's confidence tells right from wrong better and one example
    of a handful is chance (a QA user's vote won 7 to 6 of 8 and called an orange sure for Flowers at
    99 %; docs/benchmarks.md)."""
    train, held = held_out_split(labels, seed=seed)
    accuracy: dict[str, float] = {}
    if len(held):
        candidates = [NeighbourVote(vectors[train], labels[train], classes),
                      train_head(vectors[train], labels[train], classes, seed=seed, progress=progress, cancel=cancel)]
        for candidate in candidates:
            predicted = candidate.probabilities(vectors[held]).argmax(axis=1)
            accuracy[candidate.method] = float(np.mean(predicted == labels[held]))
    if accuracy and (accuracy["knn"] - accuracy["head"]) * len(held) >= KNN_WINS_BY - 1e-9:
        chosen: FolderClassifier = NeighbourVote(vectors, labels, classes)
    else:
        chosen = train_head(vectors, labels, classes, seed=seed, progress=progress, cancel=cancel)
    return ClassifierChoice(chosen, accuracy, len(held))


@dataclass(frozen=True)
class SortSuggestion:
    path: Path
    folder: Path | None  # None: not sure
    likeliest: Path  # the most likely folder, also when not sure
    confidence: float

    @property
    def shown_confidence(self) -> float:
        """The confidence as two decimals, rounded down: 0.9477 is not sure under 0.95, and must not read 0.95."""
        return math.floor(self.confidence * 100) / 100


@dataclass
class SortPlan:
    suggestions: list[SortSuggestion]
    method: str  # "head", "knn" or "finetuned": the classifier that made them
    accuracy: dict[str, float]  # each method's accuracy on the held-out examples
    held_out: int
    classes: list[Path]
    problems: list[tuple[Path, str]] = field(default_factory=list)  # files that could not be read

    def right_on_held_out(self, method: str) -> str | None:
        """How many held-out examples `method` sorted right, as counts ("4 of 5": a percentage of five
        read as a promise); None when it was not measured."""
        accuracy = self.accuracy.get(method)
        return None if accuracy is None else f"{round(accuracy * self.held_out)} of {self.held_out}"

    def unlike_its_examples(self, suggestion: SortSuggestion) -> bool:
        """A suggestion confident enough, left "not sure" because the photo is unlike its folder's examples."""
        return suggestion.folder is None and suggestion.confidence >= CONFIDENT_FROM[self.method]


def example_classes(examples: Path) -> list[Path]:
    """The example folder's subfolders, which are the classes (hidden ones left out)."""
    examples = Path(examples).expanduser().absolute()
    if not examples.is_dir():
        raise OrganiseError(f"{examples} is not a folder")
    return sorted(p for p in examples.iterdir() if p.is_dir() and not p.name.startswith("."))


def suggest_folders(library: Library, unsorted: Path, examples: Path, load_embedder: EmbedderLoader | None, *,
                    finetune: bool = False, progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> SortPlan:
    """A folder (a subfolder of `examples`) for each photo under `unsorted` that is not already in one."""
    folders = example_classes(examples)
    example_paths = {folder: photos_in(folder) for folder in folders}
    classes = [folder for folder in folders if example_paths[folder]]
    if len(classes) < 2:
        raise OrganiseError(f"{examples} needs at least two subfolders with photos in them: they are the folders "
                            "to sort into, and their photos the examples")
    unsorted_paths = photos_in(unsorted, leave_out=classes)
    if not unsorted_paths:
        raise OrganiseError(f"no photos to sort in {unsorted} (outside the example folders)")
    if finetune and load_embedder is None:
        raise OrganiseError("fine-tuning needs the library's model")
    every = [p for folder in classes for p in example_paths[folder]]
    known = vectors_for(library, every + unsorted_paths, load_embedder, progress=progress, cancel=cancel)
    row_of = {path: i for i, path in enumerate(known.paths)}
    # A folder none of whose examples could be read teaches nothing: a photo sorted into it would rest on none.
    classes = [folder for folder in classes if any(p in row_of for p in example_paths[folder])]
    if len(classes) < 2:
        raise OrganiseError(f"{examples} needs at least two subfolders with photos in them that can be read: they "
                            "are the folders to sort into, and their photos the examples")
    every = [p for folder in classes for p in example_paths[folder]]
    label_of = {p: c for c, folder in enumerate(classes) for p in example_paths[folder]}
    example_rows = [row_of[p] for p in every if p in row_of]
    labels = np.array([label_of[known.paths[i]] for i in example_rows])
    choice = choose_classifier(known.vectors[example_rows], labels, len(classes), progress=progress, cancel=cancel)
    accuracy, problems = dict(choice.accuracy), list(known.problems)
    targets = [p for p in unsorted_paths if p in row_of]
    tuned = None
    if finetune:
        tuner = LastBlockTuner(load_embedder(), library.search_space().whitening)
        paths = [known.paths[i] for i in example_rows]
        read, inputs, unread = tuner.inputs(paths, phase="preparing", progress=progress, cancel=cancel)
        problems += unread
        still_readable = set(read)
        tuned = fine_tuned_if_better(tuner, inputs, labels[[i for i, p in enumerate(paths) if p in still_readable]],
                                     len(classes), accuracy, progress=progress, cancel=cancel)
        if tuned is not None:
            targets, probabilities, unread = tuner.probabilities(tuned, targets, progress=progress, cancel=cancel)
            problems += unread
    target_vectors = known.vectors[[row_of[p] for p in targets]]
    if tuned is None:
        step(progress, cancel, "suggesting", 0, len(targets))
        probabilities = choice.classifier.probabilities(target_vectors)
    method = choice.classifier.method if tuned is None else tuned.method
    best = probabilities.argmax(axis=1) if len(targets) else np.zeros(0, dtype=int)
    alike = like_the_examples(target_vectors, best, known.vectors[example_rows], labels)
    suggestions = []
    for path, row, choice_of, like in zip(targets, probabilities, best.tolist(), alike.tolist(), strict=True):
        confident = row[choice_of] >= CONFIDENT_FROM[method] and like
        suggestions.append(SortSuggestion(path, classes[choice_of] if confident else None, classes[choice_of],
                                          float(row[choice_of])))
    step(progress, cancel, "suggesting", len(targets), len(targets))
    return SortPlan(suggestions, method, accuracy, choice.held_out, classes, problems)


def fine_tuned_if_better(tuner: LastBlockTuner, inputs: torch.Tensor, labels: np.ndarray, classes: int,
                         accuracy: dict[str, float], *, seed: int = 0, progress: ProgressCallback | None = None,
                         cancel: threading.Event | None = None) -> TunedClassifier | None:
    """The model fine-tuned on every example (`inputs`: LastBlockTuner.inputs), if, trained on the examples
    choose_classifier trained on, it is more accurate on the ones it held out than the head and the vote
    were (`accuracy`); None otherwise, and with nothing held out (nothing shows it is better). Its
    held-out accuracy goes into `accuracy`."""
    train, held = held_out_split(labels, seed=seed)  # the split choose_classifier made, unless a file went unread
    if not len(held) or not len(train):
        return None
    trial = tuner.train(inputs[train], labels[train], classes, scale=HEAD_LOGIT_SCALE,
                        head_learning_rate=HEAD_LEARNING_RATE, seed=seed, progress=progress, cancel=cancel)
    accuracy[trial.method] = float(np.mean(trial.probabilities(inputs[held][:, 0]).argmax(axis=1) == labels[held]))
    rivals = [value for method, value in accuracy.items() if method != trial.method]
    if accuracy[trial.method] <= max(rivals, default=0.0):
        log.info("the fine-tuned model was not kept: %.0f %% on the held-out examples, against %.0f %%",
                 100 * accuracy[trial.method], 100 * max(rivals, default=0.0))
        return None
    return tuner.train(inputs, labels, classes, scale=HEAD_LOGIT_SCALE, head_learning_rate=HEAD_LEARNING_RATE,
                       seed=seed, progress=progress, cancel=cancel)


def apply_suggestions(library: Library, suggestions: Sequence[SortSuggestion],
                      stop: threading.Event | None = None) -> ActionReport:
    """Move each photo into its suggested folder (the sure ones; a changed suggestion is a new
    SortSuggestion with its folder): one logged action that Library.undo puts back. `stop`: set to end
    it after the photo it is moving."""
    moves = [(s.path, s.folder) for s in suggestions if s.folder is not None]
    return library.move_into_folders(moves, stop)

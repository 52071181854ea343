"""Every verified pair of a scan, as columns.

A library of 10,000 photos keeps about 130,000 verified pairs. As Python objects they cost seconds to
build and group, most of it garbage collection that holds the interpreter lock, so the window froze
for about 0.3 s while a job read them. As columns they are eleven arrays, scored and grouped as arrays;
a pair becomes a PairEvidence only where one is asked for (the link that put a photo in its group).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from vitgallery.core.duplicates.scoring import PairEvidence, PairShape, pair_scores

# The evidence of a pair in the order Store.duplicate_pairs gives it (the score is not stored: the
# weights may change between versions, so it is worked out when pairs are read).
EVIDENCE_COLUMNS = ("a", "b", "whitened", "inliers", "agreement", "likeness", "stretch", "tilt", "padding_a",
                    "padding_b")
_INTEGER_COLUMNS = frozenset({"a", "b", "inliers"})
_KEY_SHIFT = 32  # a pair's key: a in the high half, b in the low


class PairTable(Sequence[PairEvidence]):
    """Verified pairs (a < b), one array per field of PairEvidence; a missing likeness or shape is NaN.
    Read-only: `take` and `concat` make new tables."""

    def __init__(self, columns: dict[str, np.ndarray], score: np.ndarray | None = None) -> None:
        """`columns` by EVIDENCE_COLUMNS; `score` None: scored now with pair_scores."""
        self.columns = columns
        self.score = score if score is not None else pair_scores(
            columns["whitened"], columns["inliers"], columns["agreement"], columns["likeness"])
        self.a, self.b = columns["a"], columns["b"]

    @classmethod
    def from_rows(cls, rows: Sequence[tuple]) -> PairTable:
        """Pairs from rows in EVIDENCE_COLUMNS' order (None for no value), scored now with pair_scores."""
        return cls.from_grid(_grid(rows))

    @classmethod
    def from_grid(cls, grid: np.ndarray) -> PairTable:
        """Pairs from a row each in EVIDENCE_COLUMNS' order (NaN for no value), as Store.duplicate_pairs
        gives them, scored now with pair_scores."""
        return cls(_split(grid))

    @classmethod
    def from_evidence(cls, pairs: Iterable[PairEvidence]) -> PairTable:
        """Pairs with the scores they carry."""
        pairs = list(pairs)
        return cls(_split(_grid([evidence_row(p.a, p.b, p.whitened, p.inliers, p.agreement, p.likeness, p.shape)
                                 for p in pairs])),
                   np.array([p.score for p in pairs], dtype=np.float64))

    def rows(self) -> list[tuple]:
        """As Store.save_duplicate_scan takes them (EVIDENCE_COLUMNS, None for no value)."""
        return list(self.iter_rows())

    def iter_rows(self) -> Iterator[tuple]:
        """rows(), made a few thousand at a time (a scan of 100,000 photos saves over a million)."""
        for start in range(0, len(self), ROWS_CONVERTED_AT_ONCE):
            part = slice(start, start + ROWS_CONVERTED_AT_ONCE)
            columns = [[None if v != v else v for v in self.columns[name][part].tolist()] for name in EVIDENCE_COLUMNS]
            yield from zip(*columns, strict=True)

    def take(self, which: np.ndarray) -> PairTable:
        """The pairs a boolean mask or an index array picks."""
        return PairTable({name: column[which] for name, column in self.columns.items()}, self.score[which])

    @staticmethod
    def concat(tables: Sequence[PairTable]) -> PairTable:
        return PairTable({name: np.concatenate([t.columns[name] for t in tables]) for name in EVIDENCE_COLUMNS},
                         np.concatenate([t.score for t in tables]))

    def keys(self) -> np.ndarray:
        """One int64 per pair (a, b), to match pairs with np.isin."""
        return pair_keys(self.a, self.b)

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, n):  # type: ignore[override]
        if isinstance(n, slice):
            return list(self)[n]
        return self._evidence(*(self.columns[name][n].item() for name in EVIDENCE_COLUMNS), self.score[n].item())

    def __iter__(self) -> Iterator[PairEvidence]:
        columns = [python_values(self.columns[name]) for name in EVIDENCE_COLUMNS]
        for values in zip(*columns, python_values(self.score), strict=True):
            yield self._evidence(*values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairTable):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def _evidence(a, b, whitened, inliers, agreement, likeness, stretch, tilt, padding_a, padding_b,
                  score) -> PairEvidence:
        shape = None if stretch != stretch else PairShape(stretch, tilt, padding_a, padding_b)  # NaN: no map
        return PairEvidence(a, b, whitened, inliers, agreement, score, None if likeness != likeness else likeness,
                            shape)


# Rows converted to numbers (and back) at a time. numpy holds the interpreter for a whole conversion:
# 129,000 pairs in one took 86 ms, in which the window (reading a kept scan in a job) could not paint.
ROWS_CONVERTED_AT_ONCE = 8192


def python_values(column: np.ndarray) -> Iterator:
    """A column's values as Python numbers, converted ROWS_CONVERTED_AT_ONCE at a time: one `tolist` of
    the million pairs of a 100,000-photo library holds the interpreter 35 ms."""
    for start in range(0, len(column), ROWS_CONVERTED_AT_ONCE):
        yield from column[start:start + ROWS_CONVERTED_AT_ONCE].tolist()


def _grid(rows: Sequence[tuple]) -> np.ndarray:
    """Rows in EVIDENCE_COLUMNS' order as one array (None becomes NaN)."""
    grid = np.empty((len(rows), len(EVIDENCE_COLUMNS)), dtype=np.float64)
    for start in range(0, len(rows), ROWS_CONVERTED_AT_ONCE):
        chunk = rows[start:start + ROWS_CONVERTED_AT_ONCE]
        grid[start:start + len(chunk)] = np.array(chunk, dtype=np.float64).reshape(len(chunk), len(EVIDENCE_COLUMNS))
    return grid


def _split(grid: np.ndarray) -> dict[str, np.ndarray]:
    """A grid of rows in EVIDENCE_COLUMNS' order as one array per column."""
    return {name: grid[:, n].astype(np.int64) if name in _INTEGER_COLUMNS else grid[:, n]
            for n, name in enumerate(EVIDENCE_COLUMNS)}


def evidence_row(a: int, b: int, whitened: float, inliers: int, agreement: float, likeness: float | None,
                 shape: PairShape | None) -> tuple:
    """A pair's evidence in EVIDENCE_COLUMNS' order, None for no value."""
    return (a, b, whitened, inliers, agreement, likeness,
            *((None,) * 4 if shape is None else (shape.stretch, shape.tilt, shape.padding_a, shape.padding_b)))


def pair_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One int64 per pair (a[n], b[n]) of file ids (a < b, below 2**31), for np.isin."""
    return (np.asarray(a, dtype=np.int64) << _KEY_SHIFT) | np.asarray(b, dtype=np.int64)


def pair_ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The file ids (a, b) of pair_keys."""
    return keys >> _KEY_SHIFT, keys & ((1 << _KEY_SHIFT) - 1)


def pair_key(first: int, second: int) -> int:
    """pair_keys of one pair of photos, in either order."""
    return (min(first, second) << _KEY_SHIFT) | max(first, second)

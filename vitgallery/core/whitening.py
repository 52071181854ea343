"""The whitening a library learns from its own photos: a linear map that damps what edits change.

Measured in bench/quality_lab.py (docs/quality.md, "learn the whitening"); Library fits it once
enough photos taught it (core.library), and its vector index holds the vectors through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LibraryWhitening:
    """A linear map learned from the library's own vectors (no labels): x -> normalise((x - mean) @ P).

    `fit_pairs` learns P from pairs of embeddings of the same photo seen two ways (e.g. the photo and
    its mirror image): P = C^-1/2 where C is the covariance of the pair differences. Directions in
    which an edit moves a photo's vector are damped, the rest kept, so copies come closer while
    different photos stay apart.
    """

    mean: np.ndarray  # (D,)
    projection: np.ndarray  # (D, D)

    @classmethod
    def fit_pairs(cls, vectors: np.ndarray, views_a: np.ndarray, views_b: np.ndarray, *,
                  shrink: float = 0.1) -> LibraryWhitening:
        """Centre on the library mean (`vectors`, (N, D)) and whiten by the covariance of the
        differences between matching rows of `views_a` and `views_b` ((M, D) each). `shrink` adds a
        share of the mean eigenvalue to every eigenvalue so a small sample does not blow up noise."""
        diff = views_a - views_b
        scatter = diff.T @ diff / len(diff)
        return cls(vectors.mean(axis=0).astype(np.float32), _inverse_sqrt(scatter, shrink))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        out = (vectors - self.mean) @ self.projection
        return (out / (np.linalg.norm(out, axis=-1, keepdims=True) + 1e-12)).astype(np.float32)


def _inverse_sqrt(cov: np.ndarray, shrink: float) -> np.ndarray:
    """cov^(-1/2), eigenvalues regularised by `shrink` times their mean."""
    eigval, eigvec = np.linalg.eigh(cov)
    eigval = np.maximum(eigval, 0.0) + shrink * max(float(eigval.mean()), 1e-12)
    return (eigvec * eigval ** -0.5 @ eigvec.T).astype(np.float32)

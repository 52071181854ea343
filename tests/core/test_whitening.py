from __future__ import annotations

import numpy as np

from vitgallery.core.whitening import LibraryWhitening


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_pair_whitening_damps_what_edits_change():
    """Photos are a signal in 8 dimensions; an edit adds strong noise in 2 others. Learned from
    (photo, edited photo) pairs, the whitening finds each edited copy's original; plain cosine does not."""
    rng = np.random.default_rng(4)
    n = 300
    signal = np.concatenate([rng.normal(size=(n, 8)), np.zeros((n, 2))], axis=1)

    def edit(x: np.ndarray) -> np.ndarray:
        return x + np.concatenate([rng.normal(size=(n, 8)) * 0.05, rng.normal(size=(n, 2)) * 2.0], axis=1)

    originals, copies = edit(signal), edit(signal)

    def top1(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.argmax(unit(a) @ unit(b).T, axis=1) == np.arange(n)))

    w = LibraryWhitening.fit_pairs(originals, edit(signal), edit(signal))
    assert top1(copies, originals) < 0.5
    assert top1(w.apply(copies), w.apply(originals)) > 0.95

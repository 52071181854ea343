"""Pooling and orientation views of ViT tokens: the torch half of the retrieval-quality experiments.

Measured in bench/quality_lab.py (docs/quality.md): the CLS token the embedder uses won; these stay for
the lab and its tests. Kept apart from vitgallery.core.preprocess and core.keypoints so that decode
workers, which need those, never import torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POOL_MODES = ("cls", "mean", "gem", "cls+gem", "cls+mean")


def _gem(patches: torch.Tensor, p: float) -> torch.Tensor:
    """Generalised mean over the token axis; clamped because GeM is defined on positives."""
    return patches.clamp(min=1e-6).pow(p).mean(dim=1).pow(1.0 / p)


def pool_tokens(tokens: torch.Tensor, mode: str = "cls", *, num_prefix: int = 1, gem_p: float = 3.0) -> torch.Tensor:
    """Pool ViT output tokens (B, prefix + N, D) into one L2-normalised vector per image.

    "cls": the class token; "mean"/"gem": average / GeM of the patch tokens;
    "cls+gem", "cls+mean": both parts L2-normalised, concatenated, then normalised again
    (so each part weighs the same in the cosine).
    """
    if mode not in POOL_MODES:
        raise ValueError(f"unknown pooling mode {mode!r}; expected one of {POOL_MODES}")
    cls = tokens[:, 0]
    patches = tokens[:, num_prefix:]
    if mode == "cls":
        return F.normalize(cls, dim=-1)
    pooled = patches.mean(dim=1) if mode.endswith("mean") else _gem(patches, gem_p)
    if mode in ("mean", "gem"):
        return F.normalize(pooled, dim=-1)
    return F.normalize(torch.cat([F.normalize(cls, dim=-1), F.normalize(pooled, dim=-1)], dim=-1), dim=-1)


# The dihedral group of the square: every mirror and quarter turn of a photo.
ORIENTATIONS = ("id", "flip", "rot90", "rot180", "rot270", "flip_rot90", "flip_rot180", "flip_rot270")
VIEW_MODES = {
    "none": ("id",),
    "flip": ("id", "flip"),
    "rot": ("id", "rot90", "rot180", "rot270"),
    "rot90s": ("id", "rot90", "rot270"),
    "flip+rot90": ("id", "flip", "rot90", "rot270"),
    "d4": ORIENTATIONS,
}


def orient(batch: torch.Tensor, orientation: str) -> torch.Tensor:
    """Apply one orientation to a (B, C, H, W) batch: optional horizontal mirror, then k quarter turns."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}")
    out = batch.flip(-1) if orientation.startswith("flip") else batch
    turns = {"rot90": 1, "rot180": 2, "rot270": 3}.get(orientation.removeprefix("flip_"), 0)
    return torch.rot90(out, turns, dims=(-2, -1)) if turns else out


def orientation_views(batch: torch.Tensor, mode: str = "none") -> list[torch.Tensor]:
    """The batch seen in each orientation of `mode` (see VIEW_MODES); the first is the batch itself."""
    if mode not in VIEW_MODES:
        raise ValueError(f"unknown view mode {mode!r}; expected one of {tuple(VIEW_MODES)}")
    return [orient(batch, o) for o in VIEW_MODES[mode]]

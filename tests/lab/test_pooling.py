"""The quality lab's pooling and orientation helpers (bench/lab/pooling.py), whose measurements docs/quality.md quotes."""

from __future__ import annotations

import pytest
import torch

from bench.lab import pooling
from bench.lab.pooling import orient, orientation_views, pool_tokens


def test_pool_cls_is_the_normalised_class_token():
    tokens = torch.randn(2, 1 + 16, 8)
    out = pool_tokens(tokens, "cls")
    assert out.shape == (2, 8)
    assert torch.allclose(out, tokens[:, 0] / tokens[:, 0].norm(dim=-1, keepdim=True))


@pytest.mark.parametrize(("mode", "dim"), [("cls", 8), ("mean", 8), ("gem", 8), ("cls+gem", 16), ("cls+mean", 16)])
def test_pool_outputs_unit_vectors(mode, dim):
    out = pool_tokens(torch.randn(3, 1 + 9, 8), mode)
    assert out.shape == (3, dim)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_concatenated_parts_weigh_the_same():
    tokens = torch.randn(1, 1 + 9, 8) * 50
    out = pool_tokens(tokens, "cls+gem")
    assert torch.allclose(out[0, :8].norm(), out[0, 8:].norm(), atol=1e-5)


def test_gem_of_a_constant_is_that_constant():
    tokens = torch.cat([torch.zeros(1, 1, 4), torch.full((1, 6, 4), 2.0)], dim=1)
    tokens[0, 1:, 1] = 4.0
    assert torch.allclose(pool_tokens(tokens, "gem"), torch.tensor([[1.0, 2.0, 1.0, 1.0]]) / 7 ** 0.5)


def test_unknown_pool_mode_is_refused():
    with pytest.raises(ValueError):
        pool_tokens(torch.randn(1, 2, 4), "max")


# ---------------------------------------------------------------- orientations


def test_orientation_views_counts_and_first_view():
    x = torch.randn(2, 3, 5, 5)
    for mode, n in [("none", 1), ("flip", 2), ("rot", 4), ("flip+rot90", 4), ("d4", 8)]:
        views = orientation_views(x, mode)
        assert len(views) == n
        assert torch.equal(views[0], x)


def test_orient_composes_mirror_then_turn():
    x = torch.arange(2 * 3, dtype=torch.float32).view(1, 1, 2, 3)
    assert torch.equal(orient(x, "flip_rot90"), torch.rot90(x.flip(-1), 1, dims=(-2, -1)))
    assert orient(x, "rot90").shape == (1, 1, 3, 2)


def test_d4_views_of_a_turned_image_are_the_same_views_reordered():
    """Storing all eight orientations of a photo makes any turned or mirrored copy of it match one
    of them exactly."""
    x = torch.randn(1, 3, 6, 6)
    views = orientation_views(x, "d4")
    for o in pooling.ORIENTATIONS:
        moved_views = orientation_views(orient(x, o), "d4")
        for v in moved_views:
            assert any(torch.equal(v, w) for w in views), o



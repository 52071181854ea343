#!/usr/bin/env python3
"""Search by a region on the sem task: the whole photo against the pasted object's box (truth.json `boxes`).

usage: python bench/region_search.py CORPUS_DIR [CORPUS_DIR ...] --weights FILE [--libs DIR] [--variants]

For each corpus (made by ../shared/bench/make_corpus.py) the sem photos are indexed (or the library in
LIBS/<corpus>-sem reused: bench/retrieval.py --libs makes the same ones), then every photo is searched
through Library.search twice, whole and with `region=` its object's box, and both rankings are scored.
Prints one JSON line per corpus and query kind: mAP, R@1, P@5 from the scorer and the mean query time.

--variants also compares ways of turning a region into a vector, by the plain cosine to the library's
stored vectors (no whitening, no re-rank, so that every variant sees the same space):
  whole        the photo's CLS vector
  crop         the region cut out and embedded as a photo (what Library.search does)
  crop+M%      the region grown by M% of its size on each side first (clipped to the photo)
  pool-mean    the mean of the whole photo's final patch tokens inside the region
  pool-gem     their generalised mean (p = 3)
  subset       the CLS token of a forward pass given only the region's patch tokens (a DINOv2 model)
and, through Library.search, the crop grown by 10% and 25%.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vitgallery.core.imageio import open_image, squeeze_to_model, working_copy
from vitgallery.core.library import Library
from vitgallery.core.models import DEFAULT_MODEL, Embedder, load_embedder
from vitgallery.core.preprocess import content_box
from vitgallery.core.region import Region, region_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import SCORER, load_scorer  # noqa: E402


def grown(box: list[int], share: float, width: int, height: int) -> Region:
    x, y, w, h = box
    dx, dy = round(w * share), round(h * share)
    left, top = max(0, x - dx), max(0, y - dy)
    return Region(left, top, min(width, x + w + dx) - left, min(height, y + h + dy) - top)


def open_library(task_dir: Path, embedder: Embedder, libs: Path | None, scratch: str) -> Library:
    lib_dir = libs / f"{task_dir.parent.name}-{task_dir.name}" if libs else Path(scratch) / task_dir.parent.name
    library = Library.open(task_dir / "images", lib_dir)
    library.index(embedder)
    return library


def search_all(library: Library, images: Path, names: list[str], embedder: Embedder,
               regions: dict[str, Region] | None) -> tuple[dict[str, list[str]], float]:
    rankings = {}
    started = time.perf_counter()
    for name in names:
        hits = library.search(images / name, k=len(names), embedder=embedder,
                              region=None if regions is None else regions[name])
        rankings[name] = [hit.path.name for hit in hits]
    return rankings, 1000 * (time.perf_counter() - started) / len(names)


def patch_mask(region: Region, grid: tuple[int, int], content: tuple[int, int, int, int]) -> np.ndarray:
    """(rows, cols) bool: the patches whose centre lies in the region, for a grid laid over `content`
    (the part of the photo the model input was made of, in its pixels)."""
    rows, cols = grid
    left, top, right, bottom = content
    ys = top + (np.arange(rows) + 0.5) * (bottom - top) / rows
    xs = left + (np.arange(cols) + 0.5) * (right - left) / cols
    inside_y = (ys >= region.y) & (ys < region.y + region.height)
    inside_x = (xs >= region.x) & (xs < region.x + region.width)
    mask = inside_y[:, None] & inside_x[None, :]
    if not mask.any():  # a region smaller than a patch: the patch under its centre
        cy, cx = region.y + region.height / 2, region.x + region.width / 2
        mask[np.abs(ys - cy).argmin(), np.abs(xs - cx).argmin()] = True
    return mask


def variant_vectors(embedder: Embedder, path: Path, box: list[int]) -> dict[str, np.ndarray]:
    image = open_image(path)
    region = Region(*box).within(image.width, image.height)
    work = working_copy(image)
    scale = work.width / image.width
    trimmed = content_box(np.asarray(work))
    content = tuple(round(v / scale) for v in trimmed)
    pixels = squeeze_to_model(work.crop(trimmed), embedder.input_size)
    feats = embedder.patch_features(pixels[None])[0]
    mask = patch_mask(region, feats.patches.shape[:2], content)
    inside = torch.from_numpy(feats.patches[mask])
    out = {"whole": feats.vector,
           "crop": embedder.embed_images([region_image(path, region, embedder.input_size)])[0]}
    for share in (0.1, 0.25):
        bigger = grown(box, share, image.width, image.height)
        out[f"crop+{round(100 * share)}%"] = embedder.embed_images([region_image(path, bigger, embedder.input_size)])[0]
    out["pool-mean"] = torch.nn.functional.normalize(inside.mean(0), dim=0).numpy()
    out["pool-gem"] = torch.nn.functional.normalize(inside.clamp(min=1e-6).pow(3).mean(0).pow(1 / 3), dim=0).numpy()
    if hasattr(embedder.model, "blocks"):
        out["subset"] = subset_cls(embedder, pixels, mask)
    return out


def subset_cls(embedder: Embedder, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The CLS vector of a timm ViT that sees only the masked patches (at their own positions)."""
    model = embedder.model
    with torch.inference_mode():
        x = torch.from_numpy(pixels[None]).permute(0, 3, 1, 2).float().div(255)
        mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
        std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
        tokens = model.norm_pre(model._pos_embed(model.patch_embed((x - mean) / std)))
        prefix = model.num_prefix_tokens
        keep = torch.from_numpy(mask.reshape(-1))
        tokens = torch.cat([tokens[:, :prefix], tokens[:, prefix:][:, keep]], dim=1)
        cls = model.norm(model.blocks(tokens))[0, 0]
        return torch.nn.functional.normalize(cls, dim=0).numpy()


def plain_rankings(database: dict[str, np.ndarray], queries: dict[str, np.ndarray]) -> dict[str, list[str]]:
    names = list(database)
    matrix = np.stack([database[n] for n in names])
    return {q: [names[i] for i in np.argsort(-(matrix @ v), kind="stable") if names[i] != q]
            for q, v in queries.items()}


def run_corpus(corpus: Path, embedder: Embedder, scorer, libs: Path | None, variants: bool) -> None:
    task_dir = corpus / "sem"
    truth = json.loads((task_dir / "truth.json").read_text())
    images = task_dir / "images"
    names = sorted(p.name for p in images.iterdir())
    regions = {name: Region(*truth["boxes"][name]) for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        library = open_library(task_dir, embedder, libs, scratch)
        runs = [("whole", None), ("box", regions)]
        if variants:
            sizes = {name: open_image(images / name).size for name in names}
            for share in (0.1, 0.25):
                runs.append((f"box+{round(100 * share)}%",
                             {n: grown(truth["boxes"][n], share, *sizes[n]) for n in names}))
        for label, chosen in runs:
            rankings, query_ms = search_all(library, images, names, embedder, chosen)
            result = scorer(truth, rankings)
            print(json.dumps({"corpus": corpus.name, "query": label, "through": "Library.search", **result,
                              "query_ms": round(query_ms, 1)}), flush=True)
        library.close()
    if not variants:
        return
    vectors = {name: variant_vectors(embedder, images / name, truth["boxes"][name]) for name in names}
    database = {name: v["whole"] for name, v in vectors.items()}
    for label in vectors[names[0]]:
        result = scorer(truth, plain_rankings(database, {n: v[label] for n, v in vectors.items()}))
        print(json.dumps({"corpus": corpus.name, "query": label, "through": "plain cosine", **result}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", type=Path, nargs="+")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--libs", type=Path, help="reuse (or keep) the libraries in LIBS/<corpus>-sem")
    ap.add_argument("--scorer", type=Path, default=SCORER)
    ap.add_argument("--variants", action="store_true", help="also compare ways of making a region's vector")
    a = ap.parse_args()
    scorer = load_scorer(a.scorer)
    embedder = load_embedder(a.model, weights=a.weights, device=a.device)
    print(json.dumps({"model": embedder.signature}))
    for corpus in a.corpora:
        run_corpus(corpus, embedder, scorer, a.libs, a.variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())

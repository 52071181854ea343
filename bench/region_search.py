#!/usr/bin/env python3
"""Search by a region on the sem task: the whole photo against the pasted object's box (truth.json `boxes`).

usage: python bench/region_search.py CORPUS_DIR [CORPUS_DIR ...] --weights FILE [--libs DIR] [--variants]

For each corpus (made by ../shared/bench/make_corpus.py) the sem photos are indexed (or the library in
LIBS/<corpus>-sem reused: bench/retrieval.py --libs makes the same ones), then every photo is searched
through Library.search twice, whole and with `region=` its object's box, and both rankings are scored.
Prints one JSON line per corpus and query kind: mAP, R@1, P@5 from the scorer and the mean query time.

--variants also compares ways of turning a region into a vector, ranked by the cosine in the library's
search space (its whitening, Library.search_space; no keypoint re-rank, so every variant is ranked the
same way). Vectors are cached in --cache DIR, one file per corpus, so that a second run only ranks.
  whole        the photo's vector
  crop         the region cut out and embedded as a photo (what Library.search does)
  crop+M%      the region grown by M% of its size on each side first (clipped to the photo)
  pool-mean    the mean of the whole photo's final patch tokens inside the region
  pool-gem     their generalised mean (p = 3)
  subset       the CLS token of a forward pass given only the region's patch tokens (a timm ViT)
  surroundings the photo with the region filled by its mean colour (only for the mixes below)
and mixes, in the search space: crop - B * surroundings; crop + crop+25%; crop with alpha query
expansion (the top N results' vectors added, weighted by their cosine to the power 3).

The library side is varied too ("query -> library" in the output; plain labels search the whole photos):
  objects      every library photo's own object cut out by its true box: what no library can know, so
               an upper bound for any per-photo object vector the index could keep
  salient      every library photo cut to the box around its patches with at least 20% of the peak CLS
               attention: an object vector the index could compute (one more forward pass a photo)
  max(whole, salient)  the better of the two cosines for each library photo
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
    feats = embedder.patch_features(pixels[None], attention=True)[0]
    mask = patch_mask(region, feats.patches.shape[:2], content)
    inside = torch.from_numpy(feats.patches[mask])
    out = {"whole": feats.vector,
           "crop": embedder.embed_images([region_image(path, region, embedder.input_size)])[0]}
    if feats.attention is not None:
        salient = salient_region(feats.attention, content).within(image.width, image.height)
        out["salient"] = embedder.embed_images([region_image(path, salient, embedder.input_size)])[0]
    for share in (0.1, 0.25, 0.5):
        bigger = grown(box, share, image.width, image.height)
        out[f"crop+{round(100 * share)}%"] = embedder.embed_images([region_image(path, bigger, embedder.input_size)])[0]
    out["pool-mean"] = torch.nn.functional.normalize(inside.mean(0), dim=0).numpy()
    out["pool-gem"] = torch.nn.functional.normalize(inside.clamp(min=1e-6).pow(3).mean(0).pow(1 / 3), dim=0).numpy()
    if hasattr(embedder.model, "blocks"):
        out["subset"] = subset_cls(embedder, pixels, mask)
    # The photo without the region (filled with the photo's mean colour): what the region is not.
    hidden = image.copy()
    hidden.paste(tuple(int(c) for c in np.asarray(image).reshape(-1, 3).mean(0)),
                 (region.x, region.y, region.x + region.width, region.y + region.height))
    out["surroundings"] = embedder.embed_images([hidden])[0]
    return out


def salient_region(attention: np.ndarray, content: tuple[int, int, int, int], share: float = 0.2) -> Region:
    """The box around the patches whose CLS attention is at least `share` of the peak, in photo pixels."""
    rows, cols = attention.shape
    ys, xs = np.nonzero(attention >= share * attention.max())
    left, top, right, bottom = content
    patch_w, patch_h = (right - left) / cols, (bottom - top) / rows
    x0, y0 = left + xs.min() * patch_w, top + ys.min() * patch_h
    x1, y1 = left + (xs.max() + 1) * patch_w, top + (ys.max() + 1) * patch_h
    return Region(int(x0), int(y0), max(1, round(x1 - x0)), max(1, round(y1 - y0)))


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


def space_rankings(database: np.ndarray, names: list[str], queries: np.ndarray) -> dict[str, list[str]]:
    """Each query's ranking of the library by cosine (rows are unit vectors of one space)."""
    return ranked(queries @ database.T, names)


def ranked(sims: np.ndarray, names: list[str]) -> dict[str, list[str]]:
    """Each query's (row's) ranking of the library (columns), its own photo left out."""
    return {q: [names[i] for i in np.argsort(-sims[n], kind="stable") if names[i] != q] for n, q in enumerate(names)}


def cached_variants(embedder: Embedder, images: Path, names: list[str], boxes: dict[str, list[int]],
                    cache: Path | None, corpus: str) -> dict[str, np.ndarray]:
    path = cache / f"{corpus}-region-variants.npz" if cache else None
    if path is not None and path.exists():
        return dict(np.load(path))
    per_photo = [variant_vectors(embedder, images / name, boxes[name]) for name in names]
    out = {label: np.stack([v[label] for v in per_photo]) for label in per_photo[0]}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return out


def run_corpus(corpus: Path, embedder: Embedder, scorer, libs: Path | None, variants: bool,
               cache: Path | None, kinds: tuple[str, ...] = ("whole", "box")) -> None:
    task_dir = corpus / "sem"
    truth = json.loads((task_dir / "truth.json").read_text())
    images = task_dir / "images"
    names = sorted(p.name for p in images.iterdir())
    regions = {name: Region(*truth["boxes"][name]) for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        library = open_library(task_dir, embedder, libs, scratch)
        for label, chosen in (("whole", None), ("box", regions)):
            if label not in kinds:
                continue
            rankings, query_ms = search_all(library, images, names, embedder, chosen)
            result = scorer(truth, rankings)
            print(json.dumps({"corpus": corpus.name, "query": label, "through": "Library.search", **result,
                              "query_ms": round(query_ms, 1)}), flush=True)
        space = library.search_space()
        library.close()
    if not variants:
        return
    vectors = cached_variants(embedder, images, names, truth["boxes"], cache, corpus.name)
    database = space.project(vectors["whole"])
    projected = {label: space.project(raw) for label, raw in vectors.items() if label != "surroundings"}
    libraries = {"objects": projected["crop"]}
    if "salient" in projected:
        libraries["salient"] = projected.pop("salient")
    for beta in (0.25, 0.5, 0.75):
        projected[f"crop - {beta:g} surroundings"] = unit(projected["crop"] - beta * space.project(vectors["surroundings"]))
    projected["crop + crop+25%"] = unit(projected["crop"] + projected["crop+25%"])
    for n in (2, 3, 5):
        projected[f"crop, query expansion {n}"] = expanded(projected["crop"], database, n)
    for label, queries in projected.items():
        result = scorer(truth, space_rankings(database, names, queries))
        print(json.dumps({"corpus": corpus.name, "query": label, "through": "search space, no re-rank", **result}),
              flush=True)
    for query in ("whole", "crop"):
        sims = {side: projected[query] @ library.T for side, library in libraries.items()}
        if "salient" in sims:
            sims["max(whole, salient)"] = np.maximum(projected[query] @ database.T, sims["salient"])
        for side, scores in sims.items():
            result = scorer(truth, ranked(scores, names))
            print(json.dumps({"corpus": corpus.name, "query": f"{query} -> {side}",
                              "through": "search space, no re-rank", **result}), flush=True)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def expanded(queries: np.ndarray, database: np.ndarray, n: int, alpha: float = 3.0) -> np.ndarray:
    """alpha-QE: each query plus its top n database vectors weighted by cosine^alpha; query i's own
    photo (database row i) is left out, as the search leaves it out."""
    sims = queries @ database.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :n]
    weights = np.clip(np.take_along_axis(sims, top, axis=1), 0, None) ** alpha
    return unit(queries + (weights[..., None] * database[top]).sum(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", type=Path, nargs="+")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--libs", type=Path, help="reuse (or keep) the libraries in LIBS/<corpus>-sem")
    ap.add_argument("--scorer", type=Path, default=SCORER)
    ap.add_argument("--variants", action="store_true", help="also compare ways of making a region's vector")
    ap.add_argument("--cache", type=Path, help="keep the variants' vectors here (one file per corpus)")
    ap.add_argument("--variants-only", action="store_true", help="skip the searches through Library.search")
    ap.add_argument("--kinds", nargs="+", choices=("whole", "box"), default=["whole", "box"],
                    help="the searches through Library.search (whole: what bench/refine.py scores as 'before')")
    a = ap.parse_args()
    scorer = load_scorer(a.scorer)
    embedder = load_embedder(a.model, weights=a.weights, device=a.device)
    print(json.dumps({"model": embedder.signature}))
    for corpus in a.corpora:
        kinds = () if a.variants_only else tuple(a.kinds)
        run_corpus(corpus, embedder, scorer, a.libs, a.variants or a.variants_only, a.cache, kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

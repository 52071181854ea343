#!/usr/bin/env python3
"""Retrieval-quality lab: embed a benchmark corpus with given options, rank, score.

Features are cached under CACHE/<corpus>/ (--cache, default: a folder in the system's temp dir) so each
configuration is cheap to re-score.

usage:
  quality_lab.py CORPUS --embed 224:squash [--embed 224:squash:d4:trim]   embed and cache features
  quality_lab.py CORPUS --config NAME        one configuration: scores, dup mAP per edit, stage times
  quality_lab.py CORPUS --all                every configuration (from cached features), markdown table
  quality_lab.py CORPUS --timing             CPU/wall time of each per-query stage of the default
  quality_lab.py CORPUS --list               the configuration names
  --merge-identical also scores dup with groups of the same picture merged (a label-noise check).
  --weights FILE (Meta's dinov2_vits14_pretrain.pth layout) is needed to embed.
CORPUS is a folder made by ../shared/bench/make_corpus.py (dup/ and sem/). Results: docs/quality.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.lab import pooling  # noqa: E402
from vitgallery.core.keypoints import VERIFIED_INLIERS, Keypoints, extract_keypoints, verify_pair  # noqa: E402
from vitgallery.core.preprocess import content_box, edited_copies  # noqa: E402
from vitgallery.core.rerank import rerank  # noqa: E402
from vitgallery.core.whitening import LibraryWhitening  # noqa: E402

log = logging.getLogger("quality_lab")

# Set from the command line in main().
WEIGHTS = Path("dinov2_vits14_pretrain.pth")
SCORER = Path(__file__).resolve().parents[3] / "shared" / "bench" / "score.py"
CACHE = Path(tempfile.gettempdir()) / "vitgallery-qlab"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
TOP = 100
FEATURES = ("cls", "mean", "gem", "gem_pre", "cls_pre")


def load_scorer():
    spec = importlib.util.spec_from_file_location("bench_score", SCORER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ap_by_edit(scorer, truth: dict, rankings: dict[str, list[str]]) -> dict[str, float]:
    """dup mAP per kind of edited query (the name's suffix, e.g. 'rot90'; 'original' for _0)."""
    rel = scorer.relevant_sets(truth)
    by: dict[str, list[float]] = {}
    for q, r in rel.items():
        if not r:
            continue
        parts = Path(q).stem.split("_", 2)
        kind = parts[2] if len(parts) == 3 else "original"
        by.setdefault(kind, []).append(scorer.average_precision([n for n in rankings[q] if n != q], r))
    return {k: round(100 * sum(v) / len(v), 1) for k, v in sorted(by.items())}


# ---------------------------------------------------------------- embedding


_models: dict[tuple[int, bool], torch.nn.Module] = {}


def get_model(size: int, dynamic: bool) -> torch.nn.Module:
    """DINOv2 ViT-S/14; `dynamic` keeps the native 37x37 position grid and resamples it per input."""
    key = (size, dynamic)
    if key not in _models:
        import timm
        from timm.models.vision_transformer import checkpoint_filter_fn

        base = 518 if dynamic else size
        m = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=base, num_classes=0,
                              dynamic_img_size=dynamic)
        sd = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
        m.load_state_dict(checkpoint_filter_fn(sd, m), strict=True)
        _models[key] = m.eval()
    return _models[key]


def forward_tokens(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens before and after the final LayerNorm: (B, 1+N, D) each."""
    x = model.patch_embed(x)
    x = model._pos_embed(x)
    x = model.norm_pre(x)
    pre = model.blocks(x)
    return pre, model.norm(pre)


def decode(path: Path, min_side: int) -> Image.Image:
    im = Image.open(path)
    im.draft("RGB", (min_side, min_side))
    im = ImageOps.exif_transpose(im)
    return im.convert("RGB")


def preprocess(im: Image.Image, size: int, resize: str) -> torch.Tensor:
    """`squash`: whole image to size x size; `aspect`: keep the aspect ratio, about size^2 pixels,
    sides a multiple of the 14 px patch."""
    if resize == "squash":
        w, h = size, size
    elif resize == "aspect":
        s = size / (im.width * im.height) ** 0.5
        w, h = max(14, round(im.width * s / 14) * 14), max(14, round(im.height * s / 14) * 14)
    else:
        raise ValueError(resize)
    im = im.resize((w, h), Image.BICUBIC, reducing_gap=None)
    t = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (t - MEAN) / STD


@dataclass(frozen=True)
class EmbedSpec:
    size: int = 224
    resize: str = "squash"
    views: str = "d4"  # orientations embedded (pooling.VIEW_MODES)
    trim: bool = False  # cut a uniform-colour frame off first (content_box)

    @property
    def tag(self) -> str:
        return (f"{self.resize}{self.size}" + ("" if self.views == "d4" else f"_{self.views}")
                + ("_trim" if self.trim else ""))


def image_names(corpus: Path, task: str) -> list[str]:
    return sorted(p.name for p in (corpus / task / "images").iterdir())


def load_image(corpus: Path, task: str, name: str, spec: EmbedSpec) -> Image.Image:
    im = decode(corpus / task / "images" / name, 2 * spec.size)
    if spec.trim:
        im = im.crop(content_box(np.asarray(im)))
    return im


def embed_images(model: torch.nn.Module, ims: list[Image.Image], spec: EmbedSpec,
                 tokens: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Features of a few images in every orientation of spec.views (keys '<orientation>/<feature>')."""
    orientations = pooling.VIEW_MODES[spec.views]
    batch = torch.stack([preprocess(im, spec.size, spec.resize) for im in ims])
    views = pooling.orientation_views(batch, spec.views)
    # group views by shape (quarter turns swap height and width of non-square inputs)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, v in enumerate(views):
        by_shape.setdefault(tuple(v.shape), []).append(k)
    feats = {}
    with torch.inference_mode():
        for ks in by_shape.values():
            pre, post = forward_tokens(model, torch.cat([views[k] for k in ks]))
            for j, k in enumerate(ks):
                o = orientations[k]
                sl = slice(j * len(ims), (j + 1) * len(ims))
                p_, q_ = pre[sl], post[sl]
                feats[f"{o}/cls"] = F.normalize(q_[:, 0], dim=-1).numpy()
                feats[f"{o}/cls_pre"] = F.normalize(p_[:, 0], dim=-1).numpy()
                feats[f"{o}/mean"] = pooling.pool_tokens(q_, "mean").numpy()
                feats[f"{o}/gem"] = pooling.pool_tokens(q_, "gem").numpy()
                feats[f"{o}/gem_pre"] = pooling.pool_tokens(p_, "gem").numpy()
                if tokens is not None and o == "id":
                    tokens.append(q_[:, 1:].to(torch.float16).numpy())
    return feats


def embed_task(corpus: Path, task: str, spec: EmbedSpec, keep_tokens: bool = False) -> dict[str, np.ndarray]:
    """Per-orientation pooled features for every image of a task: keys '<orientation>/<feature>'.
    Cached in CACHE/<corpus>/<task>_<spec>.npz (plus the id view's normed patch tokens if asked).
    With spec.trim only the images that have a frame are embedded again; the rest are copied."""
    out_dir = CACHE / corpus.name
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{task}_{spec.tag}.npz"
    tok_path = out_dir / f"{task}_{spec.tag}_tokens.npy"
    if path.exists() and (tok_path.exists() or not keep_tokens):
        with np.load(path) as z:
            return dict(z)
    names = image_names(corpus, task)
    model = get_model(spec.size, spec.resize != "squash")
    if spec.trim:
        arrays = {k: v.copy() for k, v in embed_task(corpus, task, replace(spec, trim=False)).items()}
        todo = []
        for k, n in enumerate(names):
            im = decode(corpus / task / "images" / n, 2 * spec.size)
            if content_box(np.asarray(im)) != (0, 0, im.width, im.height):
                todo.append(k)
        log.info("%s %s: %d of %d images have a frame", corpus.name, task, len(todo), len(names))
    else:
        arrays, todo = {}, list(range(len(names)))
    tokens: list[np.ndarray] | None = [] if keep_tokens else None
    chunk = 4 if spec.resize == "squash" else 1
    t0 = time.time()
    parts: list[dict[str, np.ndarray]] = []
    for c in range(0, len(todo), chunk):
        ks = todo[c:c + chunk]
        parts.append(embed_images(model, [load_image(corpus, task, names[k], spec) for k in ks], spec, tokens))
        if c % 100 < chunk:
            log.info("%s %s %s: %d/%d images, %.0f s", corpus.name, task, spec.tag, c + len(ks), len(todo),
                     time.time() - t0)
    for key in parts[0] if parts else ():
        done = np.concatenate([p[key] for p in parts])
        if spec.trim:
            arrays[key][todo] = done
        else:
            arrays[key] = done
    np.savez(path, **{**arrays, "names": np.array(names)})
    if keep_tokens:
        np.save(tok_path, np.concatenate(tokens))
    arrays["names"] = np.array(names)
    log.info("embedded %s %s %s in %.0f s", corpus.name, task, spec.tag, time.time() - t0)
    return arrays


# ---------------------------------------------------------------- keypoints


def keypoints_task(corpus: Path, task: str, long_side: int = 512, max_keypoints: int = 512) -> list[Keypoints]:
    """SIFT keypoints of every image of a task, cached in CACHE/<corpus>/<task>_kp<long>_<n>.npz."""
    path = CACHE / corpus.name / f"{task}_kp{long_side}_{max_keypoints}.npz"
    names = image_names(corpus, task)
    if path.exists():
        with np.load(path) as z:
            xy, desc, off, sizes = z["xy"], z["desc"], z["offsets"], z["sizes"]
        return [Keypoints(xy[off[i]:off[i + 1]], desc[off[i]:off[i + 1]], int(sizes[i, 0]), int(sizes[i, 1]))
                for i in range(len(names))]
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    kps = []
    for n in names:
        im = Image.open(corpus / task / "images" / n)
        im.draft("L", (2 * long_side, 2 * long_side))
        gray = np.asarray(ImageOps.exif_transpose(im).convert("L"))
        kps.append(extract_keypoints(gray, long_side=long_side, max_keypoints=max_keypoints))
    log.info("keypoints %s %s: %.1f ms/image", corpus.name, task, 1000 * (time.time() - t0) / len(names))
    off = np.cumsum([0] + [len(k) for k in kps])
    np.savez(path, xy=np.concatenate([k.xy for k in kps]), desc=np.concatenate([k.descriptors for k in kps]),
             offsets=off, sizes=np.array([[k.width, k.height] for k in kps]))
    return kps


# ---------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Config:
    """One retrieval pipeline. Every parameter is chosen on public seed 1 and then left unchanged."""

    name: str
    specs: tuple[EmbedSpec, ...] = (EmbedSpec(),)  # several: embeddings averaged (multi-scale)
    pool: str = "cls"  # a feature, or two joined by '+' (each part L2-normalised, then concatenated)
    db_views: str = "none"  # orientations averaged into the one stored vector (pooling.VIEW_MODES)
    db_max: bool = False  # store each db view as its own vector and take the max (instead of averaging)
    query_views: str = "none"  # orientations of the query; max similarity over them per candidate
    center: bool = False  # subtract the library's mean vector
    whiten_power: float = 0.0  # PCA-whitening learned on the library: eigenvalue^-power/2 (0: none)
    whiten_shrink: float = 0.1
    pair_views: tuple[str, ...] = ()  # learn the whitening from (photo, photo seen this way) pairs
    edit_sample: int = 200  # "edits" pairs: how many library photos get edited copies
    sample_orientation_pairs: bool = False  # orientation pairs only for the photos sampled for edits
    edit_copies: int = 2
    qe: int = 0  # alpha query expansion over the top-n (0: none)
    qe_alpha: float = 3.0
    dba: int = 0  # database-side augmentation over the top-n neighbours (0: none)
    rerank_k: int = 0  # verify this many top candidates with SIFT + RANSAC (0: no re-ranking)
    rerank: dict = field(default_factory=dict)  # keyword arguments of rerank
    verified_qe: bool = False  # after verification, expand the query with the verified vectors and re-search
    kp: tuple[int, int] = (512, 512)  # keypoints: analysed long side, max keypoints
    verifier: str = "sift"  # "sift": verify_pair; "tokens": mutual nearest patch tokens
    token_sim: float = 0.5  # "tokens": a mutual pair counts when its cosine is above this
    tasks: tuple[str, ...] = ("dup", "sem")


def features_of(corpus: Path, task: str, cfg: Config, orientation: str) -> np.ndarray:
    per_scale = []
    for spec in cfg.specs:
        arrays = embed_task(corpus, task, spec)
        parts = [arrays[f"{orientation}/{p}"] for p in cfg.pool.split("+")]
        per_scale.append(normalize(np.concatenate([normalize(p) for p in parts], axis=1)))
    return normalize(np.mean(per_scale, axis=0))


def normalize(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def database_vectors(corpus: Path, task: str, cfg: Config) -> list[np.ndarray]:
    """One (n, D) matrix per stored vector per image (several when db_max)."""
    views = [features_of(corpus, task, cfg, o) for o in pooling.VIEW_MODES[cfg.db_views]]
    return views if cfg.db_max else [normalize(np.mean(views, axis=0))]


def pair_features(corpus: Path, task: str, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Matching rows: each photo's own vector and the same photo seen another way (cfg.pair_views:
    orientations, or "edits": edited_copies of a sample of the library)."""
    own = features_of(corpus, task, cfg, "id")
    a, b = [], []
    for v in cfg.pair_views:
        if v == "edits":
            idx, feats = edited_copy_features(corpus, task, cfg.specs[0], cfg.edit_sample, cfg.edit_copies)
            a.append(own[idx])
            b.append(feats if cfg.pool == "cls" else _unsupported(cfg.pool))
        else:
            rows = (sample_rows(len(own), cfg.edit_sample) if cfg.sample_orientation_pairs
                    else np.arange(len(own)))
            a.append(own[rows])
            b.append(features_of(corpus, task, cfg, v)[rows])
    return np.concatenate(a), np.concatenate(b)


def pca_whitening(vectors: np.ndarray, *, power: float, shrink: float) -> LibraryWhitening:
    """Centring plus PCA whitening (the alternative to the pair whitening the product learns): `power`
    0 centres only, 1 whitens fully. `shrink` adds a share of the mean eigenvalue to every eigenvalue
    so a small library does not blow up noise."""
    mean = vectors.mean(axis=0).astype(np.float32)
    if power == 0.0:
        return LibraryWhitening(mean, np.eye(len(mean), dtype=np.float32))
    eigval, eigvec = np.linalg.eigh(np.cov(vectors, rowvar=False, bias=True))
    eigval = np.maximum(eigval, 0.0) + shrink * max(float(eigval.mean()), 1e-12)
    return LibraryWhitening(mean, (eigvec * eigval ** (-power / 2) @ eigvec.T).astype(np.float32))


def sample_rows(n: int, sample: int) -> np.ndarray:
    """The fixed random sample of library photos that get extra views for learning the whitening."""
    return np.sort(np.random.default_rng(0).choice(n, min(sample, n), replace=False))


def _unsupported(pool: str):
    raise ValueError(f"edited copies are embedded with CLS pooling only, not {pool!r}")


def edited_copy_features(corpus: Path, task: str, spec: EmbedSpec, sample: int, copies: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """CLS vectors of edited_copies of `sample` library photos (a fixed random sample), with
    the index of the photo each came from. Cached in CACHE/<corpus>/<task>_edits_<...>.npz."""
    path = CACHE / corpus.name / f"{task}_edits_{spec.tag}_{sample}x{copies}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["idx"], z["cls"]
    names = image_names(corpus, task)
    chosen = sample_rows(len(names), sample)
    model = get_model(spec.size, spec.resize != "squash")
    one_view = replace(spec, views="none")
    idx, feats = [], []
    t0 = time.time()
    for k in chosen:
        edited = edited_copies(load_image(corpus, task, names[k], spec), copies, seed=int(k))
        feats.append(embed_images(model, edited, one_view)["id/cls"])
        idx += [k] * copies
    np.savez(path, idx=np.array(idx), cls=np.concatenate(feats))
    log.info("edited copies %s %s: %d photos in %.0f s", corpus.name, task, len(chosen), time.time() - t0)
    return np.array(idx), np.concatenate(feats)


@dataclass
class Timings:
    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds


def run_task(corpus: Path, task: str, cfg: Config, timings: Timings) -> dict[str, list[str]]:
    names = image_names(corpus, task)
    n = len(names)
    db = database_vectors(corpus, task, cfg)
    queries = [features_of(corpus, task, cfg, o) for o in pooling.VIEW_MODES[cfg.query_views]]
    if cfg.center or cfg.whiten_power or cfg.pair_views:
        t0 = time.process_time()
        if cfg.pair_views:
            a, b = pair_features(corpus, task, cfg)
            transform = LibraryWhitening.fit_pairs(np.concatenate(db), a, b, shrink=cfg.whiten_shrink)
        else:
            transform = pca_whitening(np.concatenate(db), power=cfg.whiten_power, shrink=cfg.whiten_shrink)
        db = [transform.apply(d) for d in db]
        queries = [transform.apply(q) for q in queries]
        timings.add("fit whitening (once)", (time.process_time() - t0) / n)
    if cfg.dba:
        flat = db[0]
        db = [database_augmentation(flat, cfg.dba, cfg.qe_alpha)]
    t0 = time.process_time()
    sims = np.max([np.max([q @ d.T for d in db], axis=0) for q in queries], axis=0)
    np.fill_diagonal(sims, -np.inf)
    if cfg.qe:
        sims = alpha_query_expansion(queries[0], sims, db[0], cfg.qe, cfg.qe_alpha)
        np.fill_diagonal(sims, -np.inf)
    timings.add("similarity (this corpus size)", (time.process_time() - t0) / n)
    order = np.argsort(-sims, axis=1)[:, :TOP]
    if cfg.rerank_k:
        if cfg.verifier == "sift":
            kps = keypoints_task(corpus, task, *cfg.kp)

            def compute(i: int, j: int) -> int:
                return verify_pair(kps[i], kps[j])
            cache = PairCache(CACHE / corpus.name / f"{task}_pairs_sift{cfg.kp[0]}_{cfg.kp[1]}.npz", compute)
        else:
            tokens = np.load(CACHE / corpus.name / f"{task}_{EmbedSpec().tag}_tokens.npy", mmap_mode="r")

            def compute(i: int, j: int) -> int:
                return mutual_token_matches(tokens[i], tokens[j], cfg.token_sim)
            cache = PairCache(CACHE / corpus.name / f"{task}_pairs_tokens{cfg.token_sim}.npz", compute)
        t0 = time.process_time()
        verify_s = cache.seconds
        new_order = []
        for i in range(n):
            cand = order[i, :cfg.rerank_k]
            inliers = np.array([cache.verify(i, j) for j in cand])
            ranked, _ = rerank(cand, sims[i, cand], inliers, **cfg.rerank)
            if cfg.verified_qe:
                ranked = verified_expansion(i, ranked, cand, inliers, queries[0], db[0], cache.verify, cfg)
            in_ranked = set(ranked.tolist())
            new_order.append(list(ranked) + [j for j in order[i] if j not in in_ranked])
        # verification CPU time comes from the cache (measured when each pair was first computed)
        overhead = time.process_time() - t0 - cache.miss_seconds
        timings.add("re-rank", (overhead + cache.seconds - verify_s) / n)
        cache.save()
        order = [o[:TOP] for o in new_order]
    return {names[i]: [names[j] for j in order[i]] for i in range(n)}


class PairCache:
    """Verification results per (query, candidate) pair, kept on disk with the CPU time each took,
    so re-ranking rules can be re-scored without re-verifying (and still be timed honestly)."""

    def __init__(self, path: Path, compute) -> None:
        self.path, self.compute = path, compute
        self.pairs: dict[tuple[int, int], tuple[int, float]] = {}
        if path.exists():
            with np.load(path) as z:
                for i, j, v, s in zip(z["i"], z["j"], z["inliers"], z["seconds"], strict=True):
                    self.pairs[int(i), int(j)] = (int(v), float(s))
        self.seconds = 0.0  # verification CPU time of every lookup, as first measured
        self.miss_seconds = 0.0  # time actually spent computing misses now
        self.dirty = False

    def verify(self, i: int, j: int) -> int:
        hit = self.pairs.get((i, j))
        if hit is None:
            t0 = time.process_time()
            v = self.compute(i, j)
            dt = time.process_time() - t0
            self.miss_seconds += dt
            hit = self.pairs[i, j] = (v, dt)
            self.dirty = True
        self.seconds += hit[1]
        return hit[0]

    def save(self) -> None:
        if not self.dirty:
            return
        keys = np.array(list(self.pairs), dtype=np.int32).reshape(-1, 2)
        vals = np.array(list(self.pairs.values()), dtype=np.float64).reshape(-1, 2)
        np.savez(self.path, i=keys[:, 0], j=keys[:, 1], inliers=vals[:, 0].astype(np.int32), seconds=vals[:, 1])
        self.dirty = False


def mutual_token_matches(q: np.ndarray, c: np.ndarray, min_sim: float) -> int:
    """Patch tokens of two images that are each other's nearest neighbour with cosine > min_sim."""
    q = normalize(np.asarray(q, dtype=np.float32))
    c = normalize(np.asarray(c, dtype=np.float32))
    sim = q @ c.T
    fwd = sim.argmax(axis=1)
    back = sim.argmax(axis=0)
    mutual = back[fwd] == np.arange(len(q))
    return int(np.sum(mutual & (sim[np.arange(len(q)), fwd] > min_sim)))


def _weighted_neighbour_mean(anchor: np.ndarray, sims: np.ndarray, db: np.ndarray, top_n: int, alpha: float) -> np.ndarray:
    top = np.argpartition(-sims, top_n - 1, axis=1)[:, :top_n]
    w = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) ** alpha
    out = anchor + np.einsum("qn,qnd->qd", w, db[top])
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)


def alpha_query_expansion(queries: np.ndarray, sims: np.ndarray, db: np.ndarray, top_n: int = 3,
                          alpha: float = 3.0) -> np.ndarray:
    """alpha-QE: each query (Q, D) plus its top-n database vectors weighted by sim^alpha; returns the
    new similarities (Q, N). `sims` is the first search's (Q, N), with any self-match already masked."""
    expanded = _weighted_neighbour_mean(queries, sims, db, top_n, alpha)
    return expanded @ db.T


def database_augmentation(db: np.ndarray, top_n: int = 3, alpha: float = 3.0) -> np.ndarray:
    """DBA: every library vector replaced by itself plus its top-n neighbours weighted by sim^alpha."""
    sims = db @ db.T
    np.fill_diagonal(sims, -np.inf)
    return _weighted_neighbour_mean(db, sims, db, top_n, alpha)


def verified_expansion(i, ranked, cand, inliers, queries, db, verify, cfg):
    """Average the query with its verified matches, search again, verify the new candidates."""
    min_inl = cfg.rerank.get("min_inliers", VERIFIED_INLIERS)
    verified = cand[inliers >= min_inl]
    if len(verified) == 0:
        return ranked
    q = normalize(queries[i] + db[verified].sum(axis=0))
    sims = db @ q
    sims[i] = -np.inf
    new = np.argsort(-sims)[:cfg.rerank_k]
    seen = set(cand.tolist())
    extra = np.array([j for j in new if j not in seen], dtype=int)
    if len(extra) == 0:
        return ranked
    extra_inl = np.array([verify(i, j) for j in extra])
    all_c = np.concatenate([cand, extra])
    all_s = np.concatenate([queries[i] @ db[cand].T, queries[i] @ db[extra].T])
    ranked2, _ = rerank(all_c, all_s, np.concatenate([inliers, extra_inl]), **cfg.rerank)
    return ranked2


def merge_identical_groups(corpus: Path, truth: dict, max_diff: float = 8.0) -> tuple[dict, list[list[str]]]:
    """A copy of the dup truth in which groups whose original pictures are the same picture are one
    group: 32x32 RGB thumbnails of the originals differ by less than `max_diff` grey levels on
    average (joined transitively). A diagnostic of the corpus's labels, independent of any model."""
    groups = [g for g in truth["groups"] if not g.startswith("x")]
    thumbs = np.array([np.asarray(Image.open(corpus / "dup" / "images" / truth["groups"][g][0]).convert("RGB")
                                  .resize((32, 32), Image.BOX), dtype=np.float32) for g in groups])
    parent = list(range(len(groups)))

    def root(k: int) -> int:
        while parent[k] != k:
            k = parent[k]
        return k
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            if np.abs(thumbs[a] - thumbs[b]).mean() < max_diff:
                parent[root(b)] = root(a)
    merged: dict[int, list[str]] = {}
    for k, g in enumerate(groups):
        merged.setdefault(root(k), []).append(g)
    new_groups = {g: list(v) for g, v in truth["groups"].items() if g.startswith("x")}
    for members in merged.values():
        new_groups[members[0]] = [n for g in members for n in truth["groups"][g]]
    return {**truth, "groups": new_groups}, [m for m in merged.values() if len(m) > 1]


def evaluate(corpus: Path, cfg: Config, merged: bool = False) -> tuple[dict[str, dict], Timings]:
    scorer = load_scorer()
    timings = Timings()
    results = {}
    for task in cfg.tasks:
        truth = json.loads((corpus / task / "truth.json").read_text())
        rankings = run_task(corpus, task, cfg, timings)
        results[task] = scorer.score(truth, rankings)
        if task == "dup":
            results["dup_by_edit"] = ap_by_edit(scorer, truth, rankings)
            if merged:
                merged_truth, sets = merge_identical_groups(corpus, truth)
                results["dup_merged"] = {**scorer.score(merged_truth, rankings), "merged": sets}
    return results, timings


S224, S322, A224 = EmbedSpec(224, "squash"), EmbedSpec(322, "squash", "none"), EmbedSpec(224, "aspect", "none")
T224 = EmbedSpec(224, "squash", trim=True)
RR = {"min_inliers": 12}  # the product's re-rank (core.rerank: verified hits scored by their evidence)


def build_configs() -> dict[str, Config]:
    """Every configuration of the ablation, in table order. Parameters were chosen on public seed 1."""
    lw = {"specs": (T224,), "pair_views": ("flip", "edits"), "sample_orientation_pairs": True, "edit_sample": 1000}
    rr = {"rerank_k": 50, "rerank": RR, "kp": (512, 256)}
    c = [
        # pooling (224 squash, one view)
        Config("cls (baseline)"),
        Config("gem", pool="gem"),
        Config("gem-prenorm", pool="gem_pre"),
        Config("mean", pool="mean"),
        Config("cls+gem", pool="cls+gem"),
        Config("cls+gem-prenorm", pool="cls+gem_pre"),
        Config("cls+mean", pool="cls+mean"),
        # resolution and resizing
        Config("cls @322", specs=(S322,)),
        Config("cls @224+322", specs=(S224, S322)),
        Config("cls @aspect224", specs=(A224,)),
        Config("cls trim frame", specs=(T224,)),
        # orientations
        Config("cls db-avg flip", db_views="flip"),
        Config("cls db-avg flip+rot90", db_views="flip+rot90"),
        Config("cls db-avg d4", db_views="d4"),
        Config("cls db-max flip+rot90", db_views="flip+rot90", db_max=True),
        Config("cls db-max rot90s", db_views="rot90s", db_max=True),
        Config("cls query-max flip", query_views="flip"),
        Config("cls query-max flip+rot90", query_views="flip+rot90"),
        Config("cls query-max d4", query_views="d4"),
        # library-side transforms and expansion
        Config("cls centred", center=True),
        Config("cls PCA-whiten 0.5", whiten_power=0.5),
        Config("cls PCA-whiten 0.75", whiten_power=0.75),
        Config("cls PCA-whiten 1.0", whiten_power=1.0),
        Config("cls aQE3", qe=3),
        Config("cls DBA3", dba=3),
        Config("cls pair-whiten flip", pair_views=("flip",)),
        Config("cls pair-whiten flip+rot90", pair_views=("flip", "rot90", "rot270")),
        Config("cls pair-whiten edits", pair_views=("edits",)),
        Config("cls pair-whiten flip+edits", pair_views=("flip", "edits")),
        Config("trim + pair-whiten flip+edits", specs=(T224,), pair_views=("flip", "edits")),
        Config("trim + pair-whiten flip+edits, pairs from 200 photos", **{**lw, "edit_sample": 200}),
        Config("trim + pair-whiten flip+edits, pairs from <= 1000 photos", **lw),
        # re-ranking
        Config("cls rerank20 (SIFT)", rerank_k=20, rerank=RR),
        Config("cls rerank50 (SIFT)", rerank_k=50, rerank=RR),
        Config("cls rerank50 (patch tokens)", rerank_k=50, rerank=RR, verifier="tokens"),
        Config("PCA-whiten 0.75 + rerank50", whiten_power=0.75, rerank_k=50, rerank=RR),
        Config("trim + pair-whiten + rerank20", **lw, rerank_k=20, rerank=RR, kp=(512, 256)),
        Config("DEFAULT: trim + pair-whiten + rerank50", **lw, **rr),
        Config("DEFAULT, 512 keypoints", **lw, rerank_k=50, rerank=RR),
        Config("DEFAULT + verified QE", **lw, **rr, verified_qe=True),
        Config("DEFAULT + db-max flip+rot90", **lw, **rr, db_views="flip+rot90", db_max=True),
    ]
    return {x.name: x for x in c}


def missing_features(corpus: Path, cfg: Config) -> str | None:
    """Why a configuration cannot be scored from the cache alone (--all does not embed), or None."""
    for spec in cfg.specs:
        for task in cfg.tasks:
            if not (CACHE / corpus.name / f"{task}_{spec.tag}.npz").exists():
                return f"{task} not embedded as {spec.tag} (--embed {spec.size}:{spec.resize}:{spec.views}"\
                       f"{':trim' if spec.trim else ''})"
    if cfg.rerank_k and cfg.verifier == "tokens":
        for task in cfg.tasks:
            if not (CACHE / corpus.name / f"{task}_{EmbedSpec().tag}_tokens.npy").exists():
                return "no patch tokens (embedded on CPU with --embed 224:squash only)"
    return None


_forward_ms: dict[tuple[EmbedSpec, int], float] = {}


def forward_ms(spec: EmbedSpec, views: int) -> float:
    """CPU time of embedding one query image in `views` orientations (one batch), median of 5.
    CPU time, not wall time: the machine is shared, and this is what the query costs on a free core."""
    key = (spec, views)
    if key not in _forward_ms:
        model = get_model(spec.size, spec.resize != "squash")
        x = torch.randn(views, 3, spec.size, spec.size)
        with torch.inference_mode():
            model(x)
            times = []
            for _ in range(5):
                t0 = time.process_time()
                model(x)
                times.append(time.process_time() - t0)
        _forward_ms[key] = 1000 * sorted(times)[2]
    return _forward_ms[key]


def _median_time(fn, repeats: int) -> tuple[float, float]:
    """(wall ms, CPU ms) of fn, medians over `repeats` runs after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return 1000 * sorted(wall)[len(wall) // 2], 1000 * sorted(cpu)[len(cpu) // 2]


def query_timing(corpus: Path, threads: int, rerank_k: int = 50, library_size: int = 10_000) -> None:
    """Per-query stage costs of the recommended pipeline, on this machine with `threads` threads.
    The machine may be shared: CPU time is what the stage needs, wall time what it got."""
    names = [n for n in image_names(corpus, "dup") if n.endswith("_0.jpg")][:8]
    model = get_model(224, False)
    rng = np.random.default_rng(0)
    kps = keypoints_task(corpus, "dup", 512, 256)
    idx = {n: k for k, n in enumerate(image_names(corpus, "dup"))}
    q_kp = kps[idx[names[0]]]
    others = [kps[k] for k in rng.choice(len(kps), rerank_k, replace=False)]
    library = normalize(rng.normal(size=(library_size, 384)).astype(np.float32))
    whitening = LibraryWhitening.fit_pairs(library, library[:2000], normalize(library[:2000] + 0.1))
    path = corpus / "dup" / "images" / names[1]

    def decode_and_prepare() -> None:
        im = decode(path, 448)
        im = im.crop(content_box(np.asarray(im)))
        preprocess(im, 224, "squash")

    def query_keypoints() -> None:
        im = Image.open(path)
        im.draft("L", (1024, 1024))
        extract_keypoints(np.asarray(ImageOps.exif_transpose(im).convert("L")), max_keypoints=256)

    x1 = torch.randn(1, 3, 224, 224)
    x4 = torch.randn(4, 3, 224, 224)
    stages = {
        "decode + trim + resize (1600 px JPEG)": decode_and_prepare,
        "forward 1 view 224": lambda: model.forward_features(x1),
        "forward 4 views 224 (one batch)": lambda: model.forward_features(x4),
        "whitening apply": lambda: whitening.apply(library[:1]),
        f"brute-force cosine over {library_size}": lambda: np.argpartition(-(library @ library[0]), 100)[:100],
        "query keypoints (decode grey + SIFT)": query_keypoints,
        f"verify {rerank_k} candidates (<= 256 keypoints each)": lambda: [verify_pair(q_kp, c) for c in others],
    }
    print(f"| stage ({threads} threads) | wall ms | CPU ms |\n|---|---|---|")
    with torch.inference_mode():
        for label, fn in stages.items():
            wall, cpu = _median_time(fn, 7)
            print(f"| {label} | {wall:.1f} | {cpu:.1f} |", flush=True)


def costs(cfg: Config, timings: Timings, time_forward: bool) -> tuple[str, str, str]:
    """Forward passes per photo at index time, forward passes per query (+ their measured ms when
    asked), and the measured ms per query of search + re-ranking (mean over both tasks)."""
    n_db = len(pooling.VIEW_MODES[cfg.db_views])
    n_q = len(pooling.VIEW_MODES[cfg.query_views])
    index = " + ".join(f"{n_db}x{s.size}" for s in cfg.specs)
    query = " + ".join(f"{n_q}x{s.size}" for s in cfg.specs)
    if time_forward:
        query += f" ({sum(forward_ms(s, n_q) for s in cfg.specs):.0f} ms)"
    per_task = sum(v for k, v in timings.stages.items() if "once" not in k) / len(cfg.tasks)
    return index, query, f"{1000 * per_task:.1f}"


def table_row(cfg: Config, res: dict[str, dict], timings: Timings, time_forward: bool) -> str:
    index, query, ms = costs(cfg, timings, time_forward)
    d, s, m = res.get("dup", {}), res.get("sem", {}), res.get("dup_merged")
    merged = f" {m['mAP']} / {m['R@1']} |" if m else ""
    return (f"| {cfg.name} | {d.get('mAP', '-')} | {d.get('R@1', '-')} | {d.get('P@5', '-')} |{merged} "
            f"{s.get('mAP', '-')} | {s.get('P@5', '-')} | {index} | {query} | {ms} |")


TABLE_HEAD = ("| config | dup mAP | dup R@1 | dup P@5 | sem mAP | sem P@5 | forward passes per photo (index) "
              "| forward passes per query | search + re-rank CPU ms per query |\n|---|---|---|---|---|---|---|---|---|")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--embed", action="append", default=[],
                    help="embed first: SIZE:RESIZE[:VIEWS[:trim]] (e.g. 224:squash, 322:squash:none, 224:squash:d4:trim)")
    ap.add_argument("--config", action="append", default=[], help="score this configuration (repeatable)")
    ap.add_argument("--all", action="store_true", help="score every configuration, print a markdown table")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time-forward", action="store_true", help="also time the query's forward passes")
    ap.add_argument("--timing", action="store_true", help="time each per-query stage of the pipeline")
    ap.add_argument("--merge-identical", action="store_true",
                    help="also score dup with groups of identical original pictures merged (label-noise check)")
    ap.add_argument("--weights", type=Path, default=WEIGHTS, help="DINOv2 ViT-S/14 weights (Meta's layout)")
    ap.add_argument("--scorer", type=Path, default=SCORER, help="the benchmark's score.py")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where embedded features are cached")
    a = ap.parse_args()
    global WEIGHTS, SCORER, CACHE
    WEIGHTS, SCORER, CACHE = a.weights, a.scorer, a.cache
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    for e in a.embed:
        size, resize, *rest = e.split(":")
        spec = EmbedSpec(int(size), resize, *(rest[:1]), trim="trim" in rest[1:])
        for task in ("dup", "sem"):
            embed_task(a.corpus, task, spec, keep_tokens=spec == EmbedSpec())
    if a.timing:
        query_timing(a.corpus, a.threads)
    configs = build_configs()
    if a.list:
        print("\n".join(configs))
    names = list(configs) if a.all else a.config
    if names:
        head = TABLE_HEAD
        if a.merge_identical:
            head = head.replace("| dup P@5 |", "| dup P@5 | dup mAP / R@1, identical groups merged |").replace(
                "|---|---|---|---|---|", "|---|---|---|---|---|---|", 1)
        print(head)
    for name in names:
        why = missing_features(a.corpus, configs[name]) if a.all else None
        if why:
            print(f"| {name} | skipped: {why} |", flush=True)
            continue
        res, timings = evaluate(a.corpus, configs[name], a.merge_identical)
        print(table_row(configs[name], res, timings, a.time_forward), flush=True)
        if not a.all:
            print(json.dumps(res), {k: f"{1000 * v:.1f} ms/query" for k, v in timings.stages.items()}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Why-it-matched on real photos: how long one pair takes, and whether the heat points at the object.

usage: python bench/explain.py CORPUS_DIR [CORPUS_DIR ...] --weights FILE [--pairs N] [--threads 2]

Pairs are sem photos (../shared/bench/make_corpus.py) with the most alike photo of the same category
(cosine of the vectors), the pair a search shows. Prints JSON lines:
  timing   p50 / p90 milliseconds of explain_pair (decode both, the model on both, SIFT on both and the
           match), with the CLS attention, and of render_explanation, on `--threads` torch threads:
           wall time, and the process's CPU time (all threads), which a shared machine inflates less:
           on `--threads` idle cores a pair takes between cpu / threads and cpu; and, timed between the
           pairs, one photo embedded for a search (embed_images of one decoded photo), so the pair can be
           quoted in embeddings, a unit docs/benchmarks.md measured on a quiet machine
  pointing for each way of making the heat, the share of photos whose hottest patch lies inside the
           pasted object's box (truth.json `boxes`); a pair gives two photos; "untrimmed": only the
           photos the model saw whole (a photo background; on a plain one the frame is cut off first
           and little but the object is left). Ways:
             best-match       each patch's best cosine to the other photo's patches after taking away
                              the pair's mean patch token (what explain shows)
             best-match-plain the same without taking it away
             other-vector     each patch's cosine to the other photo's vector
             attention        the photo's own CLS attention (no pair at all)
             centre           the middle patch (what pointing at random-but-central scores)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vitgallery.core.explain import Explanation, PhotoPatches, explain_pair
from vitgallery.core.explain_render import render_explanation
from vitgallery.core.imageio import model_draft_size, open_image, read_meta
from vitgallery.core.models import DEFAULT_MODEL, load_embedder


def partners(embedder, images: Path, names: list[str], labels: dict[str, str]) -> list[tuple[str, str]]:
    vectors = embedder.embed_images([open_image(images / n, draft_size=448) for n in names])
    sims = vectors @ vectors.T
    pairs = []
    for i, name in enumerate(names):
        same = [j for j, other in enumerate(names) if j != i and labels[other] == labels[name]]
        if same:
            pairs.append((name, names[max(same, key=lambda j: sims[i, j])]))
    return pairs


def plain_heat(query: np.ndarray, result: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = query.reshape(-1, query.shape[-1])
    r = result.reshape(-1, result.shape[-1])
    cosines = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (r / np.linalg.norm(r, axis=1, keepdims=True)).T
    return cosines.max(axis=1).reshape(query.shape[:2]), cosines.max(axis=0).reshape(result.shape[:2])


def heats(explanation: Explanation) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    q, r = explanation.query.features, explanation.result.features

    def to_vector(patches: np.ndarray, vector_of_other: np.ndarray) -> np.ndarray:
        units = patches / np.linalg.norm(patches, axis=-1, keepdims=True)
        return units @ vector_of_other

    centre = np.zeros(q.patches.shape[:2])
    centre[centre.shape[0] // 2, centre.shape[1] // 2] = 1
    return {
        "best-match": (explanation.query_heat, explanation.result_heat),
        "best-match-plain": plain_heat(q.patches, r.patches),
        "other-vector": (to_vector(q.patches, r.vector), to_vector(r.patches, q.vector)),
        "attention": (q.attention, r.attention),
        "centre": (centre, centre),
    }


def hottest_inside(photo: PhotoPatches, heat: np.ndarray, box: list[int], full_width: int) -> bool:
    left, top, right, bottom = photo.grid_box(*np.unravel_index(np.argmax(heat), heat.shape))
    scale = photo.image.width / full_width
    x, y, w, h = (v * scale for v in box)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return x <= cx <= x + w and y <= cy <= y + h


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", type=Path, nargs="+")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--weights")
    ap.add_argument("--pairs", type=int, default=0, help="at most this many pairs per corpus (0: all)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the target is 2 cores)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    embedder = load_embedder(a.model, weights=a.weights, device="cpu")
    print(json.dumps({"model": embedder.signature, "threads": a.threads}))
    explain_ms, explain_cpu_ms, render_ms, embed_cpu_ms = [], [], [], []
    for corpus in a.corpora:
        truth = json.loads((corpus / "sem" / "truth.json").read_text())
        images = corpus / "sem" / "images"
        names = sorted(p.name for p in images.iterdir())
        pairs = partners(embedder, images, names, truth["labels"])
        if a.pairs:
            pairs = pairs[:a.pairs]
        explain_pair(embedder, images / pairs[0][0], images / pairs[0][1], attention=True)  # warm-up
        inside: dict[str, list[bool]] = {}
        for query, result in pairs:
            started, started_cpu = time.perf_counter(), time.process_time()
            explanation = explain_pair(embedder, images / query, images / result, attention=True)
            explain_ms.append(1000 * (time.perf_counter() - started))
            explain_cpu_ms.append(1000 * (time.process_time() - started_cpu))
            photo = open_image(images / query, draft_size=model_draft_size(embedder.input_size))
            started_cpu = time.process_time()
            embedder.embed_images([photo])
            embed_cpu_ms.append(1000 * (time.process_time() - started_cpu))
            started = time.perf_counter()
            render_explanation(explanation)
            render_ms.append(1000 * (time.perf_counter() - started))
            for method, (query_heat, result_heat) in heats(explanation).items():
                for photo, heat, name in ((explanation.query, query_heat, query),
                                          (explanation.result, result_heat, result)):
                    full_width = read_meta(images / name).width
                    hit = hottest_inside(photo, heat, truth["boxes"][name], full_width)
                    inside.setdefault((method, "all"), []).append(hit)
                    # On a plain background the model sees little but the object (its frame is trimmed):
                    # the photos the model saw whole are the test that means something.
                    if photo.content == (0, 0, photo.image.width, photo.image.height):
                        inside.setdefault((method, "untrimmed"), []).append(hit)
        for (method, photos), hits in inside.items():
            print(json.dumps({"corpus": corpus.name, "pointing": method, "photos": photos, "count": len(hits),
                              "inside_box_pct": round(100 * float(np.mean(hits)), 1)}), flush=True)
    print(json.dumps({"timing": "explain_pair with attention", "pairs": len(explain_ms),
                      "p50_ms": round(float(np.percentile(explain_ms, 50)), 1),
                      "p90_ms": round(float(np.percentile(explain_ms, 90)), 1),
                      "cpu_p50_ms": round(float(np.percentile(explain_cpu_ms, 50)), 1),
                      "cpu_p90_ms": round(float(np.percentile(explain_cpu_ms, 90)), 1),
                      "embed_one_cpu_p50_ms": round(float(np.percentile(embed_cpu_ms, 50)), 1),
                      "pair_in_embeddings": round(float(np.median(np.array(explain_cpu_ms) / np.array(embed_cpu_ms))), 2),
                      "load_avg_1min": round(os.getloadavg()[0], 1)}))
    print(json.dumps({"timing": "render_explanation", "p50_ms": round(float(np.percentile(render_ms, 50)), 1),
                      "p90_ms": round(float(np.percentile(render_ms, 90)), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

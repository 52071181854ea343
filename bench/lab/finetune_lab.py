#!/usr/bin/env python3
"""Would fine-tuning the ViT's last block sort photos into folders better than a head on frozen vectors?

usage: python bench/lab/finetune_lab.py CORPUS [CORPUS ...] --weights FILE [--splits 3] [--epochs 15]

Issue 17's `--finetune` question, asked on the sem task the way bench/organise.py sort splits it (per
category half examples, half unsorted, seeded). Each photo and its mirror image are run through the
model once up to its last block (cached in --cache); then, per split, the same cosine head (AdamW,
cross-entropy, logit scale 16) is trained on the examples twice: over the frozen last block, and with
the last block and the final norm trained too (a learning rate of 2e-5 there, 1e-2 for the head).
Both read the raw CLS token, so only the fine-tuning differs. Prints the top-1 accuracy on the unsorted
half for each split and their mean, as JSON lines.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from organise import half_split  # noqa: E402

from vitgallery.core.imageio import decode_for_model  # noqa: E402
from vitgallery.core.models import DEFAULT_MODEL, load_embedder  # noqa: E402

LOGIT_SCALE = 16.0
BATCH = 32


def last_block_inputs(embedder, images: Path, names: list[str], cache: Path | None) -> torch.Tensor:
    """(photos, 2, tokens, dim): each photo and its mirror image, as the model's last block receives them."""
    if cache is not None and cache.exists():
        return torch.load(cache)
    model = embedder.model
    views = []
    for name in names:
        pixels = decode_for_model(images / name, embedder.input_size).pixels
        views.append(np.stack([pixels, pixels[:, ::-1]]))
    x = embedder.normalised_input(np.ascontiguousarray(np.concatenate(views)))
    with torch.inference_mode():
        tokens = model.norm_pre(model._pos_embed(model.patch_embed(x)))
        for block in model.blocks[:-1]:
            tokens = block(tokens)
    hidden = tokens.reshape(len(names), 2, *tokens.shape[1:]).clone()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(hidden, cache)
    return hidden


def accuracy(model, hidden: torch.Tensor, labels: np.ndarray, classes: int, examples: np.ndarray,
             unsorted: np.ndarray, *, finetune: bool, epochs: int, seed: int) -> float:
    torch.manual_seed(seed)
    block, norm = copy.deepcopy(model.blocks[-1]), copy.deepcopy(model.norm)
    weights = torch.nn.Parameter(torch.randn(classes, hidden.shape[-1]) * 0.01)
    groups = [{"params": [weights], "lr": 1e-2}]
    tuned = list(block.parameters()) + list(norm.parameters())
    if finetune:
        groups.append({"params": tuned, "lr": 2e-5})
    else:
        for parameter in tuned:
            parameter.requires_grad_(False)
    optimiser = torch.optim.AdamW(groups, weight_decay=1e-4)
    x = hidden[torch.from_numpy(examples)].reshape(-1, *hidden.shape[2:])  # both views of every example
    y = torch.from_numpy(labels[examples]).repeat_interleave(2)

    def vectors(tokens: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(norm(block(tokens))[:, 0], dim=-1)

    for _ in range(epochs):
        for rows in torch.randperm(len(x)).split(BATCH):
            logits = LOGIT_SCALE * vectors(x[rows]) @ torch.nn.functional.normalize(weights, dim=-1).T
            loss = torch.nn.functional.cross_entropy(logits, y[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        scores = vectors(hidden[torch.from_numpy(unsorted)][:, 0]) @ torch.nn.functional.normalize(weights, dim=-1).T
    return float((scores.argmax(1).numpy() == labels[unsorted]).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", type=Path, nargs="+")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--cache", type=Path, help="keep the last block's inputs here (one file per corpus)")
    a = ap.parse_args()
    torch.set_num_threads(1)  # small matrices: more threads only wait on each other
    embedder = load_embedder(a.model, weights=a.weights, device="cpu", precision="fp32")
    for corpus in a.corpora:
        task = corpus / "sem"
        truth = json.loads((task / "truth.json").read_text())
        names = sorted(truth["labels"])
        categories = [truth["labels"][n] for n in names]
        classes = sorted(set(categories))
        labels = np.array([classes.index(c) for c in categories])
        cache = a.cache / f"{corpus.name}-last-block.pt" if a.cache else None
        hidden = last_block_inputs(embedder, task / "images", names, cache)
        means = {}
        for finetune in (False, True):
            label = "last block fine-tuned" if finetune else "frozen"
            scores = []
            for split in range(a.splits):
                examples, unsorted = half_split(categories, split)
                scores.append(accuracy(embedder.model, hidden, labels, len(classes), examples, unsorted,
                                       finetune=finetune, epochs=a.epochs, seed=split))
                print(json.dumps({"corpus": corpus.name, "model": label, "split": split,
                                  "top1": round(100 * scores[-1], 2)}), flush=True)
            means[label] = round(100 * float(np.mean(scores)), 2)
        print(json.dumps({"corpus": corpus.name, "mean_top1": means}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

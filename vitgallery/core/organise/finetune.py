"""Fine-tuning the ViT's last block to sort by example (`vitgallery sort --finetune`, the Sort page's
"Fine-tune the model" box).

The seed's training loop, made cheap enough to try: each example and its mirror image run once through
the frozen model up to its last block; a copy of the last block and of the final norm are then trained
with a cosine head on those inputs (cross-entropy, AdamW), so an epoch costs one block's forward and
backward pass, not the whole model's. The head reads the CLS token through the library's whitening, the
space the head and the vote of sort.py work in: untrained, the copy gives the library's own vectors, and
training starts from there. The model itself is never changed. sort.py measures the result on the
held-out examples, like the head and the vote, and keeps it only where it is more accurate than both.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vitgallery.core.imageio import DecodeError, model_input
from vitgallery.core.models import Embedder
from vitgallery.core.organise.vectors import EMBED_BATCH, OrganiseError, ProgressCallback, step, unreadable
from vitgallery.core.whitening import LibraryWhitening

if TYPE_CHECKING:
    import torch

# Measured against the head over the frozen block (bench/lab/finetune_lab.py, sem corpora of seeds 1 and 2,
# docs/benchmarks.md): the pretrained block moves a little, the head learns at the head's own rate.
FINETUNE_EPOCHS = 15
FINETUNE_BATCH = 32
BLOCK_LEARNING_RATE = 2e-5
WEIGHT_DECAY = 1e-4


@dataclass
class TunedClassifier:
    """A fine-tuned last block and final norm, and a cosine head over the CLS token they give, whitened."""

    block: torch.nn.Module
    norm: torch.nn.Module
    whitening: tuple[torch.Tensor, torch.Tensor] | None  # the library's (mean, projection); None: none
    weights: torch.Tensor  # (classes, dim): unit rows once trained (untrained: each class's mean vector)
    scale: float
    method = "finetuned"

    def vectors(self, inputs: torch.Tensor) -> torch.Tensor:
        """Last-block inputs (B, tokens, dim) -> unit vectors (B, dim), as LibraryWhitening.apply gives them."""
        import torch

        vectors = torch.nn.functional.normalize(self.norm(self.block(inputs))[:, 0], dim=-1)
        if self.whitening is not None:
            mean, projection = self.whitening
            vectors = torch.nn.functional.normalize((vectors - mean) @ projection, dim=-1)
        return vectors

    def probabilities(self, inputs: torch.Tensor) -> np.ndarray:
        """Last-block inputs (B, tokens, dim) -> (B, classes), a training batch at a time."""
        import torch

        rows = [np.zeros((0, len(self.weights)))]
        with torch.no_grad():
            for batch in inputs.split(FINETUNE_BATCH):
                logits = self.scale * self.vectors(batch.to(self.weights.device, torch.float32)) @ self.weights.T
                rows.append(torch.softmax(logits, dim=1).cpu().numpy())
        return np.concatenate(rows)


class LastBlockTuner:
    """Fine-tunes copies of a timm ViT's last block and final norm on photos run through the rest once;
    `whitening`: the library's, which the head reads the CLS token through."""

    def __init__(self, embedder: Embedder, whitening: LibraryWhitening | None = None):
        from timm.models.vision_transformer import VisionTransformer

        model = embedder.model
        if not isinstance(model, VisionTransformer):
            raise OrganiseError(f"fine-tuning is built for the DINOv2 ViTs, and this library's model is "
                                f"{embedder.model_id}: sort without fine-tuning")
        import torch

        if not isinstance(model.blocks[-1].attn.qkv, torch.nn.Linear):  # torch int8 packs its weights
            raise OrganiseError("fine-tuning needs the model's float weights, and this library runs it as torch "
                                "int8: sort without fine-tuning")
        self.embedder = embedder
        self.model = model
        self.whitening = None if whitening is None else tuple(
            torch.tensor(np.asarray(part, np.float32), device=embedder.device)
            for part in (whitening.mean, whitening.projection))

    @property
    def device(self) -> torch.device:
        return self.embedder.device

    def inputs(self, paths: Sequence[Path], *, phase: str, progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None) -> tuple[list[Path], torch.Tensor, list[tuple[Path, str]]]:
        """(the photos read, their last block's inputs (photos, 2, tokens, dim): each photo and its mirror
        image, in bfloat16 on the CPU, the photos that could not be read). bfloat16 halves the memory (0.4 MB
        a photo for ViT-S/14); the block runs in float32."""
        import torch

        read: list[Path] = []
        problems: list[tuple[Path, str]] = []
        chunks = []
        for chunk_read, tokens, chunk_problems in self._chunks(paths, mirrored=True, phase=phase, progress=progress,
                                                               cancel=cancel):
            read += chunk_read
            problems += chunk_problems
            if chunk_read:
                chunks.append(tokens.to(torch.bfloat16))
        return read, torch.cat(chunks) if chunks else torch.zeros(0), problems

    def probabilities(self, tuned: TunedClassifier, paths: Sequence[Path], *, progress: ProgressCallback | None = None,
                      cancel: threading.Event | None = None) -> tuple[list[Path], np.ndarray, list[tuple[Path, str]]]:
        """(the photos read, each one's probability per class from `tuned`, the photos that could not be
        read), a batch at a time (progress phase "suggesting")."""
        read: list[Path] = []
        problems: list[tuple[Path, str]] = []
        rows = [np.zeros((0, len(tuned.weights)))]
        for chunk_read, tokens, chunk_problems in self._chunks(paths, mirrored=False, phase="suggesting",
                                                               progress=progress, cancel=cancel):
            read += chunk_read
            problems += chunk_problems
            if chunk_read:
                rows.append(tuned.probabilities(tokens[:, 0]))
        return read, np.concatenate(rows), problems

    def _chunks(self, paths: Sequence[Path], *, mirrored: bool, phase: str, progress: ProgressCallback | None,
                cancel: threading.Event | None) -> Iterator[tuple[list[Path], torch.Tensor, list[tuple[Path, str]]]]:
        """Per batch of photos: (those read, their last block's inputs (photos, views, tokens, dim) on the
        CPU, those that could not be read). Views: the photo, and with `mirrored` its mirror image. A batch
        that none could be read of gives no inputs (an empty tensor)."""
        import torch

        step(progress, cancel, phase, 0, len(paths))
        for start in range(0, len(paths), EMBED_BATCH):
            read, pixels, problems = [], [], []
            for path in paths[start:start + EMBED_BATCH]:
                try:
                    photo = model_input(path, self.embedder.input_size)
                except (DecodeError, OSError) as exc:
                    problems.append((path, unreadable(exc)))
                    continue
                read.append(path)
                pixels.append(np.stack([photo, photo[:, ::-1]]) if mirrored else photo[None])
            if pixels:
                with torch.inference_mode():
                    tokens = self._frozen_part(self.embedder.normalised_input(np.concatenate(pixels)))
                yield read, tokens.cpu().reshape(len(pixels), -1, *tokens.shape[1:]), problems
            elif problems:
                yield [], torch.zeros(0), problems
            step(progress, cancel, phase, min(start + EMBED_BATCH, len(paths)), len(paths))

    def _frozen_part(self, x: torch.Tensor) -> torch.Tensor:
        """The model's forward_features up to its last block."""
        model = self.model
        tokens = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
        for block in model.blocks[:-1]:
            tokens = block(tokens)
        return tokens

    def untrained(self, inputs: torch.Tensor, labels: np.ndarray, classes: int, *, scale: float) -> TunedClassifier:
        """Copies of the block and the norm as the model has them, and a head whose class directions are
        the means of each class's vectors (training refines them instead of starting from noise)."""
        import torch

        block = copy.deepcopy(self.model.blocks[-1]).float().to(self.device)
        norm = copy.deepcopy(self.model.norm).float().to(self.device)
        tuned = TunedClassifier(block, norm, self.whitening, torch.zeros(0), scale)
        with torch.no_grad():
            first_views = tuned.vectors(inputs[:, 0].to(self.device, torch.float32))
            y = torch.from_numpy(labels).to(self.device)
            tuned.weights = torch.stack([first_views[y == c].mean(dim=0) if (y == c).any()
                                         else torch.zeros(first_views.shape[1], device=self.device)
                                         for c in range(classes)])
        return tuned

    def train(self, inputs: torch.Tensor, labels: np.ndarray, classes: int, *, scale: float, head_learning_rate: float,
              epochs: int = FINETUNE_EPOCHS, seed: int = 0, progress: ProgressCallback | None = None,
              cancel: threading.Event | None = None) -> TunedClassifier:
        """Cross-entropy and AdamW over every view of every example, `epochs` times in shuffled batches; a
        progress step ("fine-tuning") per batch, so that a cancel stops it within a batch (an epoch over a
        thousand examples is a minute on a CPU)."""
        import torch

        generator = torch.Generator().manual_seed(seed)  # the batches' order
        tuned = self.untrained(inputs, labels, classes, scale=scale)
        head = torch.nn.Parameter(tuned.weights.clone())
        optimiser = torch.optim.AdamW([
            {"params": [head], "lr": head_learning_rate},
            {"params": [*tuned.block.parameters(), *tuned.norm.parameters()], "lr": BLOCK_LEARNING_RATE},
        ], weight_decay=WEIGHT_DECAY)
        views = inputs.reshape(-1, *inputs.shape[2:])
        y = torch.from_numpy(np.repeat(labels, inputs.shape[1])).to(self.device)
        batches = -(-len(views) // FINETUNE_BATCH)
        step(progress, cancel, "fine-tuning", 0, epochs * batches)
        for epoch in range(epochs):
            for number, rows in enumerate(torch.randperm(len(views), generator=generator).split(FINETUNE_BATCH)):
                batch = views[rows].to(self.device, torch.float32)
                logits = scale * tuned.vectors(batch) @ torch.nn.functional.normalize(head, dim=1).T
                loss = torch.nn.functional.cross_entropy(logits, y[rows.to(self.device)])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                step(progress, cancel, "fine-tuning", epoch * batches + number + 1, epochs * batches)
        tuned.block.requires_grad_(False)
        tuned.norm.requires_grad_(False)
        tuned.weights = torch.nn.functional.normalize(head.detach(), dim=1)
        return tuned

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
import torch

from vitgallery.cli import main
from vitgallery.core.imageio import model_input
from vitgallery.core.models import MODELS, Embedder
from vitgallery.core.organise import sort
from vitgallery.core.organise.finetune import LastBlockTuner
from vitgallery.core.organise.sort import (
    HEAD_LEARNING_RATE,
    HEAD_LOGIT_SCALE,
    fine_tuned_if_better,
    suggest_folders,
)
from vitgallery.core.organise.vectors import OrganiseCancelled, OrganiseError, photos_in
from vitgallery.core.whitening import LibraryWhitening


def test_the_untrained_copy_gives_the_model_own_vectors(sorting, tiny):
    _, _, sorted_dir, _ = sorting
    paths = photos_in(sorted_dir)
    tuner = LastBlockTuner(tiny)
    read, inputs, problems = tuner.inputs(paths, phase="preparing")
    assert read == paths and not problems
    assert inputs.shape[:2] == (len(paths), 2), "each photo and its mirror image"
    pixels = np.stack([model_input(p, tiny.input_size) for p in paths])
    untrained = tuner.untrained(inputs, np.zeros(len(paths), np.int64), 1, scale=HEAD_LOGIT_SCALE)
    with torch.no_grad():
        vectors = untrained.vectors(inputs[:, 0].float()).numpy()
        mirrored = untrained.vectors(inputs[:, 1].float()).numpy()
    cosines = np.sum(vectors * tiny.embed_pixels(pixels), axis=1)
    assert cosines.min() > 0.999, "bfloat16 inputs round a little, nothing more"
    assert np.sum(mirrored * tiny.embed_pixels(pixels[:, :, ::-1]), axis=1).min() > 0.999

    rng = np.random.default_rng(0)
    whitening = LibraryWhitening(rng.normal(0, 0.1, tiny.dim).astype(np.float32),
                                 rng.normal(0, 1, (tiny.dim, tiny.dim)).astype(np.float32))
    untrained = LastBlockTuner(tiny, whitening).untrained(inputs, np.zeros(len(paths), np.int64), 1,
                                                          scale=HEAD_LOGIT_SCALE)
    with torch.no_grad():
        whitened = untrained.vectors(inputs[:, 0].float()).numpy()
    cosines = np.sum(whitened * whitening.apply(tiny.embed_pixels(pixels)), axis=1)
    assert cosines.min() > 0.999, "the head reads the library's whitened vectors"


def test_fine_tuning_learns_the_examples_and_leaves_the_model_alone(sorting, tiny):
    _, _, sorted_dir, _ = sorting
    paths = photos_in(sorted_dir)
    labels = np.array([int(p.parent.name[-1]) for p in paths])
    tuner = LastBlockTuner(tiny)
    _, inputs, _ = tuner.inputs(paths, phase="preparing")
    before = {name: value.clone() for name, value in tiny.model.state_dict().items()}
    steps = []
    tuned = tuner.train(inputs, labels, 3, scale=HEAD_LOGIT_SCALE, head_learning_rate=HEAD_LEARNING_RATE, epochs=30,
                        progress=steps.append)
    batches = -(-2 * len(paths) // 32)  # each photo and its mirror image, 32 a batch
    assert [s.done for s in steps if s.phase == "fine-tuning"] == list(range(30 * batches + 1))
    assert {s.total for s in steps if s.phase == "fine-tuning"} == {30 * batches}
    probabilities = tuned.probabilities(inputs[:, 0])
    assert np.allclose(probabilities.sum(axis=1), 1) and (probabilities.argmax(axis=1) == labels).all()
    assert not torch.equal(tuned.block.mlp.fc1.weight, tiny.model.blocks[-1].mlp.fc1.weight), "the block was tuned"
    assert all(torch.equal(before[name], value) for name, value in tiny.model.state_dict().items())


def test_kept_only_where_it_beats_the_head_and_the_vote(sorting, tiny):
    _, _, sorted_dir, _ = sorting
    paths = photos_in(sorted_dir) * 3  # enough examples for a held-out part per class
    labels = np.array([int(p.parent.name[-1]) for p in paths])
    tuner = LastBlockTuner(tiny)
    _, inputs, _ = tuner.inputs(paths, phase="preparing")
    accuracy = {"head": 1.0, "knn": 0.5}
    assert fine_tuned_if_better(tuner, inputs, labels, 3, accuracy) is None
    assert 0.0 <= accuracy["finetuned"] <= 1.0, "measured, and reported, though not kept"
    accuracy = {"head": 0.0, "knn": 0.0}
    kept = fine_tuned_if_better(tuner, inputs, labels, 3, accuracy)
    assert accuracy["finetuned"] > 0 and kept is not None and kept.method == "finetuned"


def test_suggestions_from_a_fine_tuned_model_and_cancelling_it(sorting, tiny, monkeypatch):
    library, _, sorted_dir, outside = sorting
    measured = sort.choose_classifier

    def with_poor_rivals(*args, **kwargs):  # so that the fine-tuned model is kept
        choice = measured(*args, **kwargs)
        return dataclasses.replace(choice, accuracy={method: 0.0 for method in choice.accuracy})

    monkeypatch.setattr(sort, "choose_classifier", with_poor_rivals)
    steps = []
    plan = suggest_folders(library, outside, sorted_dir, lambda: tiny, finetune=True, progress=steps.append)
    assert {"preparing", "fine-tuning", "suggesting"} <= {s.phase for s in steps}
    assert plan.method == "finetuned" and plan.accuracy["finetuned"] > 0
    [suggestion] = plan.suggestions
    assert suggestion.likeliest == sorted_dir / "scene1"
    cancel = threading.Event()

    def cancel_when_fine_tuning(progress):
        if progress.phase == "fine-tuning":
            cancel.set()

    with pytest.raises(OrganiseCancelled):
        suggest_folders(library, outside, sorted_dir, lambda: tiny, finetune=True, progress=cancel_when_fine_tuning,
                        cancel=cancel)


def test_an_unreadable_example_is_reported_and_the_rest_are_used(sorting, tiny):
    _, _, sorted_dir, _ = sorting
    paths = photos_in(sorted_dir)
    paths[0].write_bytes(b"not a photo")
    tuner = LastBlockTuner(tiny)
    read, inputs, problems = tuner.inputs(paths, phase="preparing")
    assert read == paths[1:] and len(inputs) == len(paths) - 1
    assert [path for path, _ in problems] == [paths[0]]
    tuned = tuner.train(inputs, np.arange(len(read)) % 2, 2, scale=HEAD_LOGIT_SCALE,
                        head_learning_rate=HEAD_LEARNING_RATE, epochs=1)
    read, probabilities, problems = tuner.probabilities(tuned, paths[:1])
    assert read == [] and probabilities.shape == (0, 2) and [path for path, _ in problems] == [paths[0]]


def test_a_model_that_is_not_a_timm_vit_is_a_clear_error():
    spec = MODELS["resnet50"]
    with torch.device("meta"):
        model = spec.build()
    embedder = Embedder(spec, model, "0" * 64, torch.device("meta"), runtime="torch")  # built, never run
    with pytest.raises(OrganiseError, match="fine-tuning is built for the DINOv2 ViTs"):
        LastBlockTuner(embedder)


def test_cli_sort_finetune_json(sorting, capsys):
    library, _, sorted_dir, outside = sorting
    library.close()
    args = ["sort", str(outside), "--examples", str(sorted_dir), "--library", str(library.library_dir), "--json",
            "--finetune"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] in ("head", "knn", "finetuned")
    assert set(result["held_out_accuracy"]) == {"head", "knn", "finetuned"}
    assert [s["path"] for s in result["suggestions"]] == [str(outside / "s1_c.jpg")]

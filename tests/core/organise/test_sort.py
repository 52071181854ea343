from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from tests.photos import save_copies
from vitgallery.cli import main
from vitgallery.core.duplicates import ActionReport
from vitgallery.core.models import load_embedder
from vitgallery.core.organise.sort import (
    KNN_WINS_BY,
    LIKE_AS_A_COPY,
    LinearHead,
    NeighbourVote,
    SortSuggestion,
    apply_suggestions,
    choose_classifier,
    held_out_split,
    like_the_examples,
    suggest_folders,
    train_head,
)
from vitgallery.core.organise.vectors import OrganiseCancelled, OrganiseError


def labelled(classes: int, per_class: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, 24))
    labels = np.repeat(np.arange(classes), per_class)
    vectors = centres[labels] + spread * rng.normal(size=(len(labels), 24))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), labels


def test_the_head_learns_separable_classes_with_a_step_per_epoch():
    vectors, labels = labelled(classes=4, per_class=12, spread=0.3)
    steps = []
    head = train_head(vectors, labels, 4, epochs=5, progress=steps.append)
    assert [s.done for s in steps] == [0, 1, 2, 3, 4, 5] and {s.phase for s in steps} == {"training"}
    probabilities = head.probabilities(vectors)
    assert np.allclose(probabilities.sum(axis=1), 1) and (probabilities.argmax(axis=1) == labels).mean() == 1


def test_a_photo_like_none_of_the_folders_is_not_sure_however_confident_the_classifier():
    examples, labels = labelled(classes=3, per_class=5, spread=0.3)
    stranger = np.random.default_rng(7).normal(size=(1, 24)).astype(np.float32)
    stranger /= np.linalg.norm(stranger)
    probabilities = train_head(examples[labels < 2], labels[labels < 2], 2).probabilities(stranger)
    suggested = probabilities.argmax(axis=1)
    assert probabilities.max() > 0.5  # two folders to choose from: one of them looks likely
    assert not like_the_examples(stranger, suggested, examples[labels < 2], labels[labels < 2]).any()
    own, own_labels = labelled(classes=3, per_class=9, spread=0.3)  # the same centres: new photos of the folders
    new = np.isin(np.arange(len(own_labels)) % 9, [6, 7, 8]) & (own_labels < 2)
    assert like_the_examples(own[new], own_labels[new], examples[labels < 2], labels[labels < 2]).mean() >= 0.5



def test_a_folder_of_one_or_two_examples_is_sure_only_of_their_copies():
    """They tell no spread: a photo of the same kind is not sure, a copy of one of them is."""
    rng = np.random.default_rng(5)
    photo, kin, stranger = np.eye(24, dtype=np.float32)[:3]

    def between(a: np.ndarray, b: np.ndarray, cosine: float) -> np.ndarray:
        return (cosine * a + np.sqrt(1 - cosine**2) * b)[None, :]

    for examples in (photo[None, :], np.vstack([photo, between(photo, kin, 0.6)])):
        labels = np.zeros(len(examples), dtype=int)
        copy = between(photo, stranger, LIKE_AS_A_COPY + 0.05)
        same_kind = between(photo, stranger, LIKE_AS_A_COPY - 0.05)
        assert like_the_examples(copy, np.array([0]), examples, labels).all()
        assert not like_the_examples(same_kind, np.array([0]), examples, labels).any()
        assert not like_the_examples(rng.normal(size=(1, 24)).astype(np.float32) / 5, np.array([0]), examples,
                                     labels).any()


def test_an_edit_of_a_folder_of_copies_is_like_its_examples():
    """Three copies of one photo set their bar at a copy; an edit of it (a crop, a filter) is like them."""
    rng = np.random.default_rng(3)
    photo, other = np.eye(24, dtype=np.float32)[:2]
    copies = photo + 0.01 * rng.normal(size=(3, 24)).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    assert (copies @ copies.T).min() > 0.99

    def at(cosine: float) -> np.ndarray:
        return (cosine * photo + np.sqrt(1 - cosine**2) * other)[None, :]

    labels = np.zeros(3, dtype=int)
    assert like_the_examples(at(LIKE_AS_A_COPY + 0.05), np.array([0]), copies, labels).all()
    assert not like_the_examples(at(LIKE_AS_A_COPY - 0.05), np.array([0]), copies, labels).any()


def test_training_stops_when_cancelled():
    vectors, labels = labelled(classes=3, per_class=5, spread=0.3)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OrganiseCancelled):
        train_head(vectors, labels, 3, cancel=cancel)


def test_the_held_out_part_leaves_every_class_an_example():
    labels = np.array([0] * 10 + [1] * 2 + [2])
    train, held = held_out_split(labels)
    assert sorted(train.tolist() + held.tolist()) == list(range(13))
    assert set(labels[train]) == {0, 1, 2}
    assert sorted(labels[held].tolist()) == [0, 0, 1], "a fifth of ten, one of two, none of one"


def test_both_methods_are_measured_and_the_head_wins_a_tie():
    vectors, labels = labelled(classes=3, per_class=10, spread=0.2)
    choice = choose_classifier(vectors, labels, 3)
    assert set(choice.accuracy) == {"head", "knn"} and choice.held_out == 6
    assert choice.accuracy["knn"] == choice.accuracy["head"] == 1.0
    assert isinstance(choice.classifier, LinearHead)


def test_the_vote_is_kept_when_it_is_more_accurate():
    # Each class is two opposite clumps: no one direction per class (the head) finds both, the vote does.
    vectors, labels = labelled(classes=3, per_class=10, spread=0.1)
    vectors = np.concatenate([vectors, -vectors])
    labels = np.concatenate([labels, labels])
    choice = choose_classifier(vectors, labels, 3)
    assert (choice.accuracy["knn"] - choice.accuracy["head"]) * choice.held_out >= KNN_WINS_BY
    assert isinstance(choice.classifier, NeighbourVote)


def test_a_vote_ahead_by_one_held_out_example_is_chance_and_the_head_is_kept(monkeypatch):
    vectors, labels = labelled(classes=3, per_class=10, spread=0.1)  # both sort every held-out example right...
    head_probabilities = LinearHead.probabilities

    def one_wrong(self, x):
        found = head_probabilities(self, x)
        if len(x) == 6:  # ...but the head, made to sort the first held-out example wrong
            found = found.copy()
            found[0] = np.roll(found[0], 1)
        return found

    monkeypatch.setattr(LinearHead, "probabilities", one_wrong)
    choice = choose_classifier(vectors, labels, 3)
    assert choice.held_out == 6 and choice.accuracy["knn"] == 1.0 and choice.accuracy["head"] == 5 / 6
    assert isinstance(choice.classifier, LinearHead)


def test_suggestions_for_photos_in_and_outside_the_library(sorting, tiny):
    library, root, sorted_dir, outside = sorting
    loads = []

    def load():
        loads.append(1)
        return tiny

    plan = suggest_folders(library, outside, sorted_dir, load)
    [suggestion] = plan.suggestions
    assert suggestion.folder == sorted_dir / "scene1" and suggestion.confidence > 0.5
    assert loads, "photos outside the library are embedded with the library's model"
    assert plan.classes == [sorted_dir / f"scene{i}" for i in range(3)]


def test_apply_moves_the_sure_ones_and_undo_puts_them_back(sorting, tiny):
    library, root, sorted_dir, _ = sorting
    plan = suggest_folders(library, root, sorted_dir, lambda: tiny)
    by_scene = {s.path.name: s for s in plan.suggestions}
    for scene in range(3):
        assert by_scene[f"s{scene}_c.jpg"].likeliest == sorted_dir / f"scene{scene}"
    report = apply_suggestions(library, plan.suggestions)
    sure = [s for s in plan.suggestions if s.folder is not None]
    assert len(report.done) == len(sure) and all((s.folder / s.path.name).exists() for s in sure)
    library.undo(report.action_id)
    assert all(s.path.exists() for s in plan.suggestions)


def test_photos_sorted_in_from_elsewhere_are_new_to_the_library_not_changed(tmp_path):
    moved = ActionReport("move", done=[(tmp_path / "in" / "a.jpg", tmp_path / "lib" / "a.jpg")],
                         to_index=[tmp_path / "lib" / "a.jpg"])
    assert moved.summary() == (f"1 file moved into {tmp_path / 'lib'} (not searchable until the next index: "
                               "new to the library)")
    back = ActionReport("undo", done=moved.done, to_index=moved.to_index)
    assert back.summary().endswith("(not searchable until the next index: changed while away)")


def test_too_few_example_folders_is_a_clear_error(sorting, tmp_path, tiny):
    library, root, _, outside = sorting
    lonely = tmp_path / "Lonely"
    save_copies(0, lonely / "only", copies=("a",))
    with pytest.raises(OrganiseError, match="at least two subfolders"):
        suggest_folders(library, outside, lonely, lambda: tiny)
    with pytest.raises(OrganiseError, match="not a folder"):
        suggest_folders(library, outside, tmp_path / "nowhere", lambda: tiny)


def test_an_example_folder_with_no_photo_that_can_be_read_is_left_out(sorting, capsys):
    """QA: such a folder ended the sort in a traceback, or, as the second of two, had the other one's
    photos sent into it sure at 1.00; its file was said to be "not sorted"."""
    library, root, sorted_dir, outside = sorting
    library.close()
    for photo in (sorted_dir / "scene2").iterdir():
        photo.write_bytes(photo.read_bytes()[:300])
    args = ["sort", str(outside), "--examples", str(sorted_dir), "--library", str(library.library_dir), "--json"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert [s["folder"] for s in json.loads(out.out)["suggestions"]] == [str(sorted_dir / "scene1")]
    assert f"example not used: {sorted_dir / 'scene2' / 's2_a.jpg'}: " in out.err and "not sorted" not in out.err
    for photo in (sorted_dir / "scene0").iterdir():
        photo.write_bytes(b"not a photo")
    assert main(args) == 2
    assert "needs at least two subfolders with photos in them that can be read" in capsys.readouterr().err


def test_cli_sort_json_then_apply(sorting, capsys):
    library, root, sorted_dir, outside = sorting
    library.close()
    args = ["sort", str(outside), "--examples", str(sorted_dir), "--library", str(library.library_dir), "--json"]
    assert main(args[:-1]) == 0
    said = capsys.readouterr().out
    assert "1 photo: 1 sure, 0 not sure (below 0.95, or unlike the folder's examples); nothing moved: --apply" in said
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    [suggestion] = result["suggestions"]
    assert suggestion == {"path": str(outside / "s1_c.jpg"), "folder": str(sorted_dir / "scene1"),
                          "confidence": suggestion["confidence"], "sure": True}
    assert result["problems"] == []
    assert main(args + ["--apply"]) == 0
    out = capsys.readouterr()
    moved_to = sorted_dir / "scene1" / "s1_c.jpg"
    assert json.loads(out.out)["moved"] == [{"from": str(outside / "s1_c.jpg"), "to": str(moved_to)}]
    assert json.loads(out.out)["action_id"] == 1, "the action a script can undo"
    assert "1 file moved" in out.err
    # the photo came from outside the photo folder: the undo puts it back only into a folder its user names
    # the command names the library: the one later commands default to may be another by then
    assert f"`vitgallery duplicates --undo 1 --library {library.library_dir} --into {outside}` puts them back" in out.err
    undo = ["duplicates", "--library", str(library.library_dir), "--undo", "1"]
    assert main(undo) == 1 and moved_to.exists()
    assert f"refused: it came from {outside}, outside the photo folder" in (said := capsys.readouterr().out)
    assert f"(`--into {outside}`)" in said
    assert main([*undo, "--into", str(outside)]) == 0
    assert (outside / "s1_c.jpg").exists() and not moved_to.exists()
    capsys.readouterr()
    assert main(["duplicates", "--library", str(library.library_dir), "--into", str(outside)]) == 2
    assert "--into goes with --undo" in capsys.readouterr().err
    assert main(["sort", str(outside), "--examples", str(outside), "--library", str(library.library_dir)]) == 2
    assert "error:" in capsys.readouterr().err


def test_cli_sort_into_the_photo_folder_says_the_photos_sorted_in_are_searchable(scenes, tmp_path, capsys):
    """QA: it said "not searchable until the next index: new to the library" of photos it indexed next."""
    library, root = scenes
    for scene in range(3):
        save_copies(scene, root / "Sorted" / f"scene{scene}", copies=("a", "b"))
    library.index(load_embedder("tiny-test"), decode_workers=0)
    library.close()
    outside = tmp_path / "outside"
    save_copies(1, outside, copies=("c",))
    assert main(["sort", str(outside), "--examples", str(root / "Sorted"), "--library", str(tmp_path / "library"),
                 "--apply"]) == 0
    said = capsys.readouterr().err
    assert f"1 file moved into {root / 'Sorted' / 'scene1'}" in said and "not searchable" not in said
    assert main(["status", "--library", str(tmp_path / "library")]) == 0
    assert "on disk now  : as indexed" in capsys.readouterr().out


def test_cli_sort_says_which_photos_it_renamed_beside_one_of_the_same_name(sorting, capsys):
    library, root, sorted_dir, outside = sorting
    library.close()
    (sorted_dir / "scene1" / "s1_c.jpg").write_bytes((sorted_dir / "scene1" / "s1_a.jpg").read_bytes())
    assert main(["sort", str(outside), "--examples", str(sorted_dir), "--library", str(library.library_dir),
                 "--apply"]) == 0
    assert f"  s1_c.jpg is {sorted_dir / 'scene1' / 's1_c (2).jpg'}: a photo of that name was there" in (
        capsys.readouterr().err)


def test_the_library_follows_the_photos_an_action_moves(scenes, tmp_path, tiny):
    """Within the photo folder a moved photo keeps its row and vector under the new path; out of it, it
    leaves the library at once (searches must not name it, nor the next index take it for a lost
    drive); put back by the undo, it is in the library again at once, with its vector."""
    library, root = scenes
    inside, outside = root / "s0_a.jpg", root / "s1_a.jpg"
    vector, away_vector = (library.stored_vectors([inside, outside])[path] for path in (inside, outside))
    count = library.status().photos

    within = library.move_into_folders([(inside, root / "kept")])
    assert within.done == [(inside, root / "kept" / inside.name)]
    assert library.relative_path(inside) not in {row.path for row in library.photos()}
    assert np.array_equal(library.stored_vectors([root / "kept" / inside.name])[root / "kept" / inside.name], vector)
    away = library.move_into_folders([(outside, tmp_path / "elsewhere")])
    assert library.status().photos == count - 1
    assert library.relative_path(outside) not in {row.path for row in library.photos()}

    library.undo(away.action_id)
    library.undo(within.action_id)
    assert inside.exists() and outside.exists()
    assert np.array_equal(library.stored_vectors([inside])[inside], vector), "back under its old path, not re-embedded"
    assert np.array_equal(library.stored_vectors([outside])[outside], away_vector), "back from outside, not re-embedded"
    assert library.status().photos == count
    summary = library.index(tiny, decode_workers=0, batch_size=8)
    assert (summary.added, summary.removed, summary.moved) == (0, 0, 0)
    assert library.status().photos == count


def test_a_confidence_just_under_the_bar_never_reads_as_the_bar(tmp_path):
    suggestion = SortSuggestion(tmp_path / "ostrich.jpg", None, tmp_path / "animals", 0.9477)
    assert suggestion.shown_confidence == 0.94 and f"{suggestion.shown_confidence:.0%}" == "94%"
    assert SortSuggestion(tmp_path / "a.jpg", tmp_path / "animals", tmp_path / "animals", 1.0).shown_confidence == 1.0

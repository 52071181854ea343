"""Library.index_paths: bringing the library up to date for given paths only, as the watcher does."""

from __future__ import annotations

import shutil

from tests.photos import make_photo, save_copies


def stored(library) -> set[str]:
    return {row.path for row in library.photos()}


def test_new_changed_and_deleted_photos(scenes, tiny):
    library, root = scenes
    make_photo(500).save(root / "new.jpg")
    make_photo(501).save(root / "s0_a.jpg")  # changed content
    (root / "s1_a.jpg").unlink()
    summary = library.index_paths(tiny, [root / "new.jpg", root / "s0_a.jpg", root / "s1_a.jpg"], decode_workers=0)
    assert (summary.added, summary.updated, summary.removed) == (1, 1, 1)
    assert "new.jpg" in stored(library) and "s1_a.jpg" not in stored(library)
    assert library.search(root / "new.jpg", k=1), "searchable at once"


def test_a_moved_photo_keeps_its_vector_and_an_untouched_one_is_not_looked_at(scenes, tiny):
    library, root = scenes
    (root / "s2_a.jpg").rename(root / "renamed.jpg")
    (root / "s3_a.jpg").unlink()  # not reported: stays until a full index
    summary = library.index_paths(tiny, [root / "s2_a.jpg", root / "renamed.jpg"], decode_workers=0)
    assert (summary.added, summary.moved, summary.removed) == (0, 1, 0)
    assert {"renamed.jpg", "s3_a.jpg"} <= stored(library) and "s2_a.jpg" not in stored(library)


def test_folders_moved_in_moved_around_and_deleted(scenes, tiny, tmp_path):
    library, root = scenes
    trip = save_copies(40, tmp_path / "elsewhere" / "trip")
    shutil.move(str(trip[0].parent), root / "trip")
    summary = library.index_paths(tiny, [root / "trip"], decode_workers=0)
    assert summary.added == 3 and {f"trip/{p.name}" for p in trip} <= stored(library)
    (root / "trip").rename(root / "journey")
    summary = library.index_paths(tiny, [root / "trip", root / "journey"], decode_workers=0)
    assert (summary.added, summary.moved) == (0, 3)
    shutil.rmtree(root / "journey")
    summary = library.index_paths(tiny, [root / "journey"], decode_workers=0)
    assert summary.removed == 3 and not any(p.startswith("journey/") for p in stored(library))


def test_ignored_paths_and_skip_records_of_other_files_kept(scenes, tiny, tmp_path):
    library, root = scenes
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not a photo")
    library.index(tiny, decode_workers=0)
    assert [s.path for s in library.skipped()] == ["broken.jpg"]
    (root / ".hidden").mkdir()
    make_photo(7).save(root / ".hidden" / "x.jpg")
    make_photo(8).save(tmp_path / "outside.jpg")
    summary = library.index_paths(tiny, [root / ".hidden" / "x.jpg", tmp_path / "outside.jpg", root / "s0_b.jpg"],
                                  decode_workers=0)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, 1)
    assert [s.path for s in library.skipped()] == ["broken.jpg"], "a skip record outside the paths stays"

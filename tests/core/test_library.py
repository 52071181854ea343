from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from tests.photos import make_photo
from vitgallery.core.index_cache import INDEX_NAME
from vitgallery.core.library import (
    Library,
    LibraryError,
    default_library_dir,
    known_photo_folder,
    last_library_dir,
    library_dir_under,
    remember_last_library,
)
from vitgallery.core.models import Embedder, load_embedder


class CountingEmbedder(Embedder):
    """The tiny test model, counting how many photos it embeds (the views that teach the library's
    whitening go through embed_views and are not counted)."""

    def __init__(self, weights_tag: str = "random-seed-0"):
        base = load_embedder("tiny-test")
        super().__init__(base.spec, base.model, weights_tag, base.device)
        self.embedded = 0

    def embed_pixels(self, pixels):
        self.embedded += len(pixels)
        return super().embed_pixels(pixels)


@pytest.fixture
def embedder():
    return CountingEmbedder()


def open_lib(root, tmp_path):
    return Library.open(root, tmp_path / "library")


def index(lib, embedder, **kw):
    return lib.index(embedder, decode_workers=0, batch_size=4, **kw)


def test_index_and_search_a_library_photo(photo_folder, tmp_path, embedder):
    before = sorted(p.relative_to(photo_folder) for p in photo_folder.rglob("*"))
    lib = open_lib(photo_folder, tmp_path)
    summary = index(lib, embedder)
    assert (summary.added, summary.skipped, summary.removed) == (12, 0, 0)
    assert lib.status().photos == 12 and lib.status().index_size == 12
    hits = lib.search(photo_folder / "img_03.jpg", k=5)
    assert len(hits) == 5
    assert all(h.path != photo_folder / "img_03.jpg" for h in hits), "the query itself is not a result"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert sorted(p.relative_to(photo_folder) for p in photo_folder.rglob("*")) == before, \
        "nothing is written into the photo folder"


def test_outside_query_finds_its_original(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    resaved = tmp_path / "resaved.jpg"
    make_photo(7).resize((300, 225)).save(resaved, quality=60)
    hits = lib.search(resaved, k=3, embedder=embedder)
    assert hits[0].path == photo_folder / "img_07.jpg"
    assert hits[0].cosine > 0.9


def test_asking_for_more_results_than_exist(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    assert len(lib.search(photo_folder / "img_00.jpg", k=500)) == 11


def test_empty_library_and_foreign_query_say_so(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    with pytest.raises(LibraryError, match="empty"):
        lib.search(photo_folder / "img_00.jpg")
    index(lib, embedder)
    outside = tmp_path / "outside.jpg"
    make_photo(99).save(outside)
    with pytest.raises(LibraryError, match="model is needed"):
        lib.search(outside)


def test_a_second_index_run_on_the_library_waits_for_the_first_then_finds_its_work_done(
        photo_folder, tmp_path, embedder, monkeypatch):
    """Two `vitgallery index` at once each embedded every photo: the lock is the library's, across
    processes, so two Library objects of one folder stand for two processes here."""
    first, second = open_lib(photo_folder, tmp_path), open_lib(photo_folder, tmp_path)
    started = threading.Event()
    embed = embedder.embed_pixels

    def slowly(pixels):
        started.set()
        threading.Event().wait(0.3)
        return embed(pixels)

    monkeypatch.setattr(embedder, "embed_pixels", slowly)
    running = threading.Thread(target=index, args=(first, embedder))
    running.start()
    assert started.wait(30)
    phases = []
    later = index(second, embedder, progress=lambda p: phases.append(p.phase))
    running.join()
    assert phases[0] == "waiting" and (later.added, later.unchanged) == (0, 12)
    assert embedder.embedded == 12, "each photo embedded once"
    cancel = threading.Event()
    cancel.set()
    with first._one_index_run(None, threading.Event()):  # a run waiting when cancelled gives up
        assert index(second, embedder, cancel=cancel).cancelled
    first.close()
    second.close()


def test_second_run_embeds_only_changes(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    embedder.embedded = 0
    index_file = lib.library_dir / INDEX_NAME
    written = index_file.stat().st_mtime_ns
    summary = index(lib, embedder)
    assert (summary.added, summary.updated, summary.unchanged, embedder.embedded) == (0, 0, 12, 0)
    assert index_file.stat().st_mtime_ns == written, "nothing changed: the index file is not written again"

    make_photo(50).save(photo_folder / "new.jpg")
    make_photo(51).save(photo_folder / "img_01.jpg")  # edited in place
    (photo_folder / "img_02.jpg").unlink()
    summary = index(lib, embedder)
    assert (summary.added, summary.updated, summary.removed) == (1, 1, 1)
    assert embedder.embedded == 2
    assert lib.status().photos == 12 == lib.status().index_size
    assert all(h.path.name != "img_02.jpg" for h in lib.search(photo_folder / "new.jpg", k=50))


def test_a_run_with_nothing_to_add_leaves_the_index_file_unread(photo_folder, tmp_path, embedder, monkeypatch):
    from vitgallery.core import index_cache

    index(open_lib(photo_folder, tmp_path), embedder)
    loads = []
    load = index_cache.load_index
    monkeypatch.setattr(index_cache, "load_index", lambda *args, **kw: loads.append(1) or load(*args, **kw))
    lib = open_lib(photo_folder, tmp_path)  # a new start of the window
    summary = index(lib, embedder)
    assert summary.unchanged == 12 and not loads, "the run never needed the index"
    assert len(lib.search(photo_folder / "img_03.jpg", k=3)) == 3 and len(loads) == 1, "a search loads it"
    make_photo(50).save(photo_folder / "new.jpg")
    assert index(lib, embedder).added == 1 and lib.status().index_size == 13 and len(loads) == 1


def test_a_run_with_nothing_to_add_makes_no_row_of_the_library(photo_folder, tmp_path, embedder, monkeypatch):
    """It made a FileRow of every row to compare the folder with them (0.5 s of Python at 100,000 photos), and
    read them all again to embed nothing (0.9 s more), at every start of the window, beside the window's own
    work (issue 18 point 5). A row is made only of what changed."""
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    rows_made = []
    store_type = type(lib.store)
    files, files_by_ids = store_type.files, store_type.files_by_ids
    monkeypatch.setattr(store_type, "files", lambda store: rows_made.append("all") or files(store))
    monkeypatch.setattr(store_type, "files_by_ids", lambda store, ids: rows_made.extend(ids) or files_by_ids(store, ids))
    assert index(lib, embedder).unchanged == 12 and rows_made == []
    (photo_folder / "img_03.jpg").rename(photo_folder / "renamed.jpg")
    summary = index(lib, embedder)
    assert (summary.unchanged, summary.moved) == (11, 1) and len(rows_made) == 1, rows_made
    make_photo(50).save(photo_folder / "new.jpg")
    assert index(lib, embedder).added == 1 and lib.status().index_size == 13


def test_a_run_checks_the_folder_with_the_collector_paused_and_embeds_with_it_on(photo_folder, tmp_path, embedder,
                                                                                  monkeypatch):
    """The check makes objects a photo; a collector pass meanwhile walked 100,000s of them (issue 18 point 5)."""
    import gc

    from vitgallery.core import indexing

    collector_on = {}

    def noting(moment, call):
        def noted(*args):
            collector_on.setdefault(moment, gc.isenabled())
            return call(*args)
        return noted

    monkeypatch.setattr(indexing, "set_aside_unchanged", noting("checking", indexing.set_aside_unchanged))
    monkeypatch.setattr(embedder, "embed_pixels", noting("embedding", embedder.embed_pixels))
    assert gc.isenabled()
    assert index(open_lib(photo_folder, tmp_path), embedder).added == 12
    assert collector_on == {"checking": False, "embedding": True} and gc.isenabled()


def test_an_index_file_is_loaded_ahead_only_when_it_holds_what_the_database_does(photo_folder, tmp_path, embedder,
                                                                                   monkeypatch):
    from vitgallery.core import index_cache

    index(open_lib(photo_folder, tmp_path), embedder)
    loads = []
    load = index_cache.load_index
    monkeypatch.setattr(index_cache, "load_index", lambda *args, **kw: loads.append(1) or load(*args, **kw))
    lib = open_lib(photo_folder, tmp_path)
    assert lib.load_index_if_current() and len(loads) == 1
    assert len(lib.search(photo_folder / "img_03.jpg", k=3)) == 3 and len(loads) == 1, "the search uses it"
    lib.close()

    payload = (lib.library_dir / INDEX_NAME).read_bytes()
    (lib.library_dir / INDEX_NAME).write_bytes(b"damaged" + payload[7:])
    lib = open_lib(photo_folder, tmp_path)
    assert not lib.load_index_if_current() and len(loads) == 2, "a damaged file is not taken"
    assert index(lib, embedder).unchanged == 12 and any("not usable" in notice for notice in lib.notices), \
        "the next run rebuilds it"
    assert lib.status().index_size == 12
    lib.close()  # saves the rebuilt index

    lib = open_lib(photo_folder, tmp_path)
    lib.store.set_meta("generation", str(lib.store.generation + 1))  # another process committed since
    assert not lib.load_index_if_current() and len(loads) == 3, "a file behind the database is not read"
    assert lib.status().index_size == 12 and len(loads) == 4, "it is caught up when first used"
    lib.close()


def test_moved_and_renamed_files_keep_their_vectors(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    old_id = lib.store.file_by_path("img_04.jpg").id
    (photo_folder / "archive").mkdir()
    shutil.move(photo_folder / "img_04.jpg", photo_folder / "archive" / "renamed.jpg")
    shutil.move(photo_folder / "trip", photo_folder / "holiday")
    embedder.embedded = 0
    summary = index(lib, embedder)
    assert summary.moved == 3 and summary.removed == 0 and embedder.embedded == 0
    assert lib.store.file_by_path("archive/renamed.jpg").id == old_id
    hits = lib.search(photo_folder / "holiday" / "img_10.jpg", k=20)
    assert photo_folder / "archive" / "renamed.jpg" in [h.path for h in hits]


def test_missing_or_unmounted_root_deletes_nothing(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    away = tmp_path / "unplugged"
    photo_folder.rename(away)
    summary = index(lib, embedder)
    assert summary.offline and lib.status().photos == 12 and not lib.status().root_online
    assert any("missing or not mounted" in n for n in lib.notices)

    photo_folder.mkdir()  # an empty mount point
    summary = index(lib, embedder)
    assert summary.offline and lib.status().photos == 12
    photo_folder.rmdir()

    away.rename(photo_folder)
    embedder.embedded = 0
    summary = index(lib, embedder)
    assert summary.unchanged == 12 and embedder.embedded == 0


def test_bad_files_are_skipped_with_reasons_and_retried_only_when_changed(photo_folder, tmp_path, embedder):
    (photo_folder / "empty.jpg").write_bytes(b"")
    (photo_folder / "text.png").write_text("hello, not a picture")
    lib = open_lib(photo_folder, tmp_path)
    summary = index(lib, embedder)
    assert summary.added == 12 and summary.skipped == 2
    reasons = {s.path: s.reason for s in lib.skipped()}
    assert set(reasons) == {"empty.jpg", "text.png"} and all(reasons.values())

    embedder.embedded = 0
    summary = index(lib, embedder)
    assert summary.skipped == 2 and embedder.embedded == 0

    make_photo(77).save(photo_folder / "empty.jpg")  # fixed by the user
    summary = index(lib, embedder)
    assert summary.added == 1 and summary.skipped == 1
    assert [s.path for s in lib.skipped()] == ["text.png"]


def test_switching_model_re_embeds_everything(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    other = CountingEmbedder("other-weights")
    summary = index(lib, other)
    assert "the tiny-test weights changed: every photo is embedded again" in lib.notices
    assert other.embedded == 12 and summary.added == 12
    assert summary.teaching == 12  # the old model's teaching views went with its vectors
    assert lib.model_signature == other.signature
    assert lib.status().index_size == 12


def test_the_photos_indexed_while_embedding_count_each_photo_once(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    counts: list[int] = []

    def collect(progress):
        if progress.photos_indexed is not None:
            counts.append(progress.photos_indexed)

    index(lib, CountingEmbedder("other-weights"), progress=collect)
    # a new model starts from none (the window read 37 of a folder of 30 while re-embedding)
    assert counts[0] < 12 and counts[-1] == 12 == lib.status().photos
    assert counts == sorted(counts)

    counts.clear()
    make_photo(51).save(photo_folder / "img_01.jpg")  # edited in place: already counted
    make_photo(50).save(photo_folder / "new.jpg")
    index(lib, CountingEmbedder("other-weights"), progress=collect)
    assert counts[-1] == 13 == lib.status().photos


def test_damaged_index_file_is_rebuilt(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    expected = [h.path for h in lib.search(photo_folder / "img_05.jpg", k=5)]
    lib.close()
    (tmp_path / "library" / "index.hnsw").write_bytes(b"\0garbage" * 100)
    lib = open_lib(photo_folder, tmp_path)
    assert [h.path for h in lib.search(photo_folder / "img_05.jpg", k=5)] == expected
    assert any("rebuilding" in n for n in lib.notices)


def test_cancel_keeps_committed_batches(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    cancel = threading.Event()

    def progress(p):
        if p.phase == "embedding" and p.done >= 5:
            cancel.set()

    summary = index(lib, embedder, progress=progress, cancel=cancel)
    assert summary.cancelled
    kept = lib.status().photos
    assert 4 <= kept < 12
    embedder.embedded = 0
    summary = index(lib, embedder)
    assert summary.added == 12 - kept and embedder.embedded == 12 - kept


def test_reopen_by_library_dir_and_wrong_root(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    index(lib, embedder)
    lib.close()
    again = Library.open(library_dir=tmp_path / "library")
    assert again.root == photo_folder.absolute() and again.status().photos == 12
    with pytest.raises(LibraryError, match="is the library of"):
        Library.open(tmp_path, tmp_path / "library")
    with pytest.raises(LibraryError, match="no library"):
        Library.open(library_dir=tmp_path / "nothing-here")


def test_process_pool_decoding_gives_the_same_vectors(photo_folder, tmp_path, embedder):
    inline = Library.open(photo_folder, tmp_path / "inline")
    inline.index(embedder, decode_workers=0)
    pooled = Library.open(photo_folder, tmp_path / "pooled")
    summary = pooled.index(embedder, decode_workers=2)
    assert summary.added == 12
    a, b = inline.store.files(), pooled.store.files()
    va = inline.store.vectors([row.id for row in a.values()])
    vb = pooled.store.vectors([row.id for row in b.values()])
    np.testing.assert_allclose(np.stack([va[a[p].id] for p in sorted(a)]),
                               np.stack([vb[b[p].id] for p in sorted(b)]), atol=1e-5)


def test_the_library_knows_its_model_weights_and_size(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    weights = tmp_path / "my-weights.pth"
    embedder.weights_file = weights
    index(lib, embedder)
    assert lib.photo_count() == 12
    assert lib.weights_file == weights  # recorded, so the window and the CLI load the same file for queries
    lib.close()
    reopened = Library.open(library_dir=tmp_path / "library")
    assert reopened.load_embedder(device="cpu").signature == embedder.signature


def test_other_weights_than_the_librarys_say_which_and_what_to_do(photo_folder, tmp_path, embedder):
    lib = open_lib(photo_folder, tmp_path)
    embedder.weights_file = tmp_path / "my-weights.pth"
    index(lib, embedder)
    signature = lib.model_signature
    lib.store.set_meta("model_signature", signature.replace("random-seed-0", "0123abcd"))  # other weights
    with pytest.raises(LibraryError) as refused:
        lib.load_embedder(device="cpu")
    said = str(refused.value)
    assert f"not the ones the library was indexed with (tiny-test, {tmp_path / 'my-weights.pth'})" in said
    assert "index the folder again into a new library (--library DIR)" in said and "0123abcd" not in said
    lib.close()


def test_the_last_library_is_shared_and_a_missing_folder_never_becomes_one(photo_folder, tmp_path):
    assert last_library_dir() is None
    lib = open_lib(photo_folder, tmp_path)
    remember_last_library(lib.library_dir)
    assert last_library_dir() == lib.library_dir
    with pytest.raises(LibraryError, match="no such folder"):
        Library.open(tmp_path / "typo", tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_one_folder_written_two_ways_has_one_library(photo_folder, tmp_path, embedder):
    """`photos/../photos/trip` is the folder `photos/trip`: it made a second library and embedded every
    photo again. A folder name that is not UTF-8 has a library too."""
    roundabout = photo_folder.parent / ".." / photo_folder.parent.name / photo_folder.name / "."
    assert default_library_dir(roundabout) == default_library_dir(photo_folder)
    lib = Library.open(photo_folder)
    index(lib, embedder)
    count = lib.photo_count()
    lib.close()
    again = Library.open(roundabout)
    assert again.library_dir == default_library_dir(photo_folder) and again.root == photo_folder
    assert again.photo_count() == count > 0
    again.close()
    latin1 = tmp_path / os.fsdecode(b"Urlaub_M\xfcnchen")
    latin1.mkdir()
    assert default_library_dir(latin1).name.startswith(latin1.name)


def test_a_chosen_location_holds_a_library_per_folder_and_keeps_one_made_there_before(photo_folder, tmp_path):
    location = tmp_path / "libraries"
    assert library_dir_under(location, photo_folder) == location / default_library_dir(photo_folder).name
    Library.open(photo_folder, location).close()  # the location used as the library itself, as before
    assert library_dir_under(location, photo_folder) == location, "its photos are not embedded again"
    other = tmp_path / "other"
    other.mkdir()
    assert library_dir_under(location, other) == location / default_library_dir(other).name


def test_a_listing_made_beside_the_run_is_used_instead_of_listing_again(photo_folder, tmp_path, embedder, monkeypatch):
    """The window lists the folder for its grid and hands that listing to the run (core.scan.Listing):
    the folder is not walked again; without one (or None from it) the run lists the folder itself."""
    from vitgallery.core import scan

    walks = []
    real_scan_root = scan.scan_root
    monkeypatch.setattr(scan, "scan_root", lambda root: walks.append(root) or real_scan_root(root))
    listed = real_scan_root(photo_folder)
    listed.files = [f for f in listed.files if f.path != "img_05.jpg"]  # what the listing saw is what counts
    lib = open_lib(photo_folder, tmp_path)
    summary = index(lib, embedder, listing=lambda: listed)
    assert walks == [] and summary.added == 11
    assert all(h.path.name != "img_05.jpg" for h in lib.search(photo_folder / "img_01.jpg", k=50))

    summary = index(lib, embedder, listing=lambda: None)  # the window's listing ended without one
    assert walks == [photo_folder] and summary.added == 1


def test_a_folder_through_a_link_is_known_by_the_name_its_library_has(tmp_path):
    real, link, location = tmp_path / "drive" / "Pictures", tmp_path / "Pictures", tmp_path / "libraries"
    real.mkdir(parents=True)
    link.symlink_to(real, target_is_directory=True)
    assert known_photo_folder(link) == link, "no library under either name: the name given"
    Library.open(real).close()
    assert known_photo_folder(link) == real and known_photo_folder(real) == real
    assert known_photo_folder(link, location) == link, "another library location has none of it"
    Library.open(link, library_dir_under(location, link)).close()
    assert known_photo_folder(link, location) == link, "a library of its own under the link's name stays its own"


def test_a_folder_whose_library_was_made_through_a_link_to_it_is_known_by_the_link(tmp_path):
    real, link, location = tmp_path / "drive" / "photos", tmp_path / "Pictures", tmp_path / "libraries"
    real.mkdir(parents=True)
    link.symlink_to(real, target_is_directory=True)
    Library.open(link).close()  # `vitgallery index ~/Pictures`, ~/Pictures linking to the drive
    assert known_photo_folder(real) == link and known_photo_folder(link) == link
    assert known_photo_folder(real, location) == real, "another library location has none of it"
    Library.open(link, library_dir_under(location, link)).close()
    assert known_photo_folder(real, location) == link
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert known_photo_folder(elsewhere) == elsewhere, "a folder no link of a library leads to keeps its name"

    library = Library.open(real, default_library_dir(link))  # --library named, the folder by its target
    assert library.root == link and library.library_dir == default_library_dir(link)
    library.close()
    link.unlink()
    link.symlink_to(elsewhere, target_is_directory=True)  # the link leads elsewhere now
    assert known_photo_folder(real) == real
    with pytest.raises(LibraryError, match="is the library of"):
        Library.open(real, default_library_dir(link))


def test_setting_the_unchanged_files_aside_plans_as_the_whole_listing_does(tmp_path):
    """plan_changes of what set_aside_unchanged leaves gives the plan of the whole listing: moves, swaps,
    changed, new, deleted, skipped and rows without a vector alike."""
    from vitgallery.core.indexing import plan_changes, set_aside_unchanged
    from vitgallery.core.scan import fingerprint_file, scan_root
    from vitgallery.core.store import EmbeddedFile, Store

    root = tmp_path / "photos"
    for name, content in [("same.jpg", b"a"), ("touched.jpg", b"bb"), ("moved/c.jpg", b"ccc"), ("x.jpg", b"xxxx"),
                          ("y.jpg", b"yyyy"), ("edited.jpg", b"eeeee"), ("new.jpg", b"nnnnnn"), ("bad.jpg", b"z"),
                          ("plain.jpg", b"ppppppp"), ("keep1.jpg", b"k1"), ("keep2.jpg", b"k22")]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    store = Store(tmp_path / "lib.sqlite3")
    store.start_new_model("model-a", 2)

    def row(path, content, now_at=None):
        """A row for `path` of a file whose content is now at `now_at` (at `path` itself if not given)."""
        file = root / (now_at or path)
        return EmbeddedFile(path, len(content), file.stat().st_mtime_ns, fingerprint_file(file), 1, 1, None, 1.0,
                            np.array([1.0, 0.0], np.float32))

    store.add_embedded([row("same.jpg", b"a"), row("keep1.jpg", b"k1"), row("keep2.jpg", b"k22"),
                        row("c.jpg", b"ccc", "moved/c.jpg"), row("x.jpg", b"yyyy", "y.jpg"),
                        row("y.jpg", b"xxxx", "x.jpg"), row("gone.jpg", b"g", "bad.jpg"), row("plain.jpg", b"ppppppp")])
    store.add_embedded([EmbeddedFile("edited.jpg", 1, 1, "old", 1, 1, None, 1.0, np.array([0, 1], np.float32))])
    os.utime(root / "touched.jpg", ns=(1, 1))
    store.add_embedded([row("touched.jpg", b"bb")])
    os.utime(root / "touched.jpg", ns=(2_000_000_000, 2_000_000_000))  # its mtime alone changed
    st = (root / "bad.jpg").stat()
    store.record_skipped("bad.jpg", st.st_size, st.st_mtime_ns, "not a photo: cannot identify image file")
    with store.transaction():
        store._db.execute("UPDATE files SET vector = NULL WHERE path = 'plain.jpg'")  # as after a new model

    found = scan_root(root).files
    whole = plan_changes(root, found, store.files(), store.skipped(), [])
    listed = set_aside_unchanged(store, found)
    rest = plan_changes(root, listed.found, listed.known, store.skipped(), [])
    assert listed.unchanged == 3 and listed.rows == 10  # same.jpg, keep1.jpg, keep2.jpg
    assert (whole.unchanged, whole.moved) == (rest.unchanged + listed.unchanged, rest.moved) == (4, 3)
    for part in ("skipped_again", "offline", "moves", "to_embed", "missing", "replaced"):
        assert getattr(whole, part) == getattr(rest, part), part
    assert {f.path for f in whole.to_embed} == {"edited.jpg", "new.jpg", "plain.jpg"}
    assert [row.path for row in whole.missing] == ["gone.jpg"]

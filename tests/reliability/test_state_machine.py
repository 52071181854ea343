"""Promise 8: add, modify, move, delete, unmount, crash and restart in any order (a Hypothesis state
machine). Always: the index labels are the database rows with a vector and every photo's nearest
neighbour is itself. After each indexing run: the database lists exactly the photos on disk (or,
while the folder is unmounted, what it listed before), and only new contents were embedded."""

from __future__ import annotations

import gc
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.photos import make_photo
from tests.reliability.support import BATCH, SimulatedKill, check_index_holds, counting_embedder, index_space
from vitgallery.core.index import header_path, labels_path
from vitgallery.core.library import INDEX_NAME, Library
from vitgallery.core.scan import fingerprint_file

EMBEDDER = counting_embedder()
NAMES = st.sampled_from([f"{folder}{name}.jpg" for folder in ("", "a/", "a/b/", "c/") for name in "pqrst"])

settings.register_profile("reliability", max_examples=12, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


class LibraryLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="vg-state-"))
        self.root, self.unplugged, self.library_dir = self.base / "photos", self.base / "unplugged", self.base / "lib"
        self.root.mkdir()
        self.next_seed = 0
        self.lib = Library.open(self.root, self.library_dir)
        self.old_index_files: dict[str, bytes] = {}

    def teardown(self) -> None:
        self.lib.close()
        shutil.rmtree(self.base)

    # -- the folder ---------------------------------------------------------------------------------

    @property
    def mounted(self) -> bool:
        return self.root.exists()

    def on_disk(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*.jpg")) if self.mounted else []

    def write_photo(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        make_photo(self.next_seed, size=(64, 48)).save(path, quality=90)  # every write is a new content
        self.next_seed += 1

    @initialize(names=st.lists(NAMES, min_size=1, max_size=6, unique=True))
    def some_photos(self, names: list[str]) -> None:
        for name in names:
            self.write_photo(self.root / name)

    @precondition(lambda self: self.mounted)
    @rule(name=NAMES)
    def add(self, name: str) -> None:
        if not (self.root / name).exists():
            self.write_photo(self.root / name)

    @precondition(lambda self: self.on_disk())
    @rule(data=st.data())
    def modify(self, data) -> None:
        self.write_photo(self.root / data.draw(st.sampled_from(self.on_disk())))

    @precondition(lambda self: self.on_disk())
    @rule(data=st.data(), destination=NAMES)
    def move(self, data, destination: str) -> None:
        source = self.root / data.draw(st.sampled_from(self.on_disk()))
        if not (self.root / destination).exists():
            (self.root / destination).parent.mkdir(parents=True, exist_ok=True)
            source.rename(self.root / destination)

    @precondition(lambda self: self.mounted)
    @rule()
    def rename_folder(self) -> None:
        a, renamed = self.root / "a", self.root / "renamed"
        if a.exists() and not renamed.exists():
            a.rename(renamed)
        elif renamed.exists() and not a.exists():
            renamed.rename(a)

    @precondition(lambda self: self.on_disk())
    @rule(data=st.data())
    def delete(self, data) -> None:
        (self.root / data.draw(st.sampled_from(self.on_disk()))).unlink()

    @precondition(lambda self: self.mounted)
    @rule()
    def unmount(self) -> None:
        self.root.rename(self.unplugged)

    @precondition(lambda self: not self.mounted)
    @rule()
    def remount(self) -> None:
        self.unplugged.rename(self.root)

    # -- the app ------------------------------------------------------------------------------------

    @rule()
    def restart(self) -> None:
        self.lib.close()
        self.keep_index_files()
        self.lib = Library.open(self.root, self.library_dir)

    @rule(damage=st.sampled_from(["none", "delete", "truncate", "older copy"]))
    def crash(self, damage: str) -> None:
        self.die_and_restart(damage)

    def die_and_restart(self, damage: str) -> None:
        """The process dies: no close(), nothing saved; then maybe the index file suffers too."""
        del self.lib
        gc.collect()
        index_file = self.library_dir / INDEX_NAME
        if damage == "delete":
            for path in (index_file, header_path(index_file), labels_path(index_file)):
                path.unlink(missing_ok=True)
        elif damage == "truncate" and index_file.exists():
            index_file.write_bytes(index_file.read_bytes()[: index_file.stat().st_size // 2])
        elif damage == "older copy":
            for name, data in self.old_index_files.items():
                (self.library_dir / name).write_bytes(data)
        self.lib = Library.open(self.root, self.library_dir)

    @precondition(lambda self: self.on_disk())
    @rule(after=st.integers(min_value=0, max_value=8))
    def killed_while_indexing(self, after: int) -> None:
        """The process dies `after` photos into an indexing run, without saving anything more."""

        def die(progress) -> None:
            if progress.phase == "embedding" and progress.done >= after:
                raise SimulatedKill

        try:
            self.lib.index(EMBEDDER, decode_workers=0, batch_size=BATCH, progress=die)
        except SimulatedKill:
            pass
        self.die_and_restart("none")

    def keep_index_files(self) -> None:
        self.old_index_files = {p.name: p.read_bytes() for p in self.library_dir.glob("index.*")}

    @rule()
    def index(self) -> None:
        before = {path: row.fingerprint for path, row in self.lib.store.files().items()}
        disk = {path: fingerprint_file(self.root / path) for path in self.on_disk()}
        EMBEDDER.embedded = 0

        summary = self.lib.index(EMBEDDER, decode_workers=0, batch_size=BATCH)

        after = {path: row.fingerprint for path, row in self.lib.store.files().items()}
        if not self.mounted or (not disk and before):  # an empty folder may be a drive's mount point
            assert summary.offline and after == before
            return
        assert after == disk
        known = set(before.values())
        assert EMBEDDER.embedded == len(set(disk.values()) - known), "a known content was embedded again"
        assert summary.moved == sum(1 for path, fingerprint in disk.items()
                                    if fingerprint in known and before.get(path) != fingerprint)

    # -- always -------------------------------------------------------------------------------------

    @invariant()
    def index_matches_database_and_each_photo_finds_itself(self) -> None:
        space = self.lib.search_space()
        if space is None:
            assert self.lib.store.count_files() == 0
            return
        rows = self.lib.store.files()
        vectors = index_space(self.library_dir, self.lib.store.vectors([row.id for row in rows.values()]))
        check_index_holds(space.index, vectors)
        if vectors:
            ids = np.array(sorted(vectors), dtype=np.int64)
            labels, _ = space.index.query(np.stack([vectors[i] for i in ids]), 1)
            np.testing.assert_array_equal(labels[:, 0], ids)


LibraryLifecycle.TestCase.settings = settings.get_profile("reliability")
test_library_lifecycle = LibraryLifecycle.TestCase

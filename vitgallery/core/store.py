"""SQLite store: the truth about a library (files, vectors, skipped files, model, schema).

WAL journal with synchronous=NORMAL: a crash of the app loses nothing committed. A power cut or an
OS crash can lose the commits since the last checkpoint, which SQLite runs once the WAL holds 1000
pages (wal_autocheckpoint): about 40 batches of 32 photos, more if another process kept a read open
meanwhile. It never corrupts the file; the lost photos are simply embedded again on the next run.
FULL would sync every commit, a few milliseconds per batch, to save re-embedding seconds of work.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative to the library root, '/'-separated
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,          -- content hash, finds moved and renamed files
    width INTEGER, height INTEGER,
    taken_at REAL, sharpness REAL,
    vector BLOB,                        -- float32, NULL until embedded with the library's model
    indexed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_fingerprint ON files(fingerprint);
CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
"""

# Each migration only adds tables, so a library written by an older vitgallery opens unchanged.
_MIGRATIONS = {
    2: """
CREATE TABLE IF NOT EXISTS duplicate_decisions (
    key TEXT PRIMARY KEY,               -- hash of the group's sorted member fingerprints
    fingerprints TEXT NOT NULL,         -- JSON list, sorted
    paths TEXT NOT NULL,                -- JSON list, what the user saw when deciding
    decision TEXT NOT NULL,             -- 'not_duplicates' | 'keep_all'
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                 -- 'trash' | 'move' | 'export'
    target TEXT,                        -- folder moved into, export file, or trash folder
    at REAL NOT NULL,
    undone_at REAL
);
CREATE TABLE IF NOT EXISTS action_items (
    id INTEGER PRIMARY KEY,
    action_id INTEGER NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
    source TEXT NOT NULL,               -- absolute path before the action
    destination TEXT,                   -- absolute path after it (for the trash: its files/ entry)
    trash_info TEXT,                    -- the freedesktop .trashinfo written for it, if any
    state TEXT NOT NULL                 -- 'done', 'restored', or what went wrong
);
CREATE INDEX IF NOT EXISTS action_items_action ON action_items(action_id);
""",
    3: """
CREATE TABLE IF NOT EXISTS keypoints (
    file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    data BLOB NOT NULL                  -- keypoints.Keypoints.to_bytes(): verifies search matches
);
CREATE TABLE IF NOT EXISTS learning_views (
    file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    vectors BLOB NOT NULL               -- float32 (k, dim): the photo mirrored and edited, embedded
);
CREATE TABLE IF NOT EXISTS whitening (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key TEXT NOT NULL,                  -- names this fit (the index file records the one it holds)
    mean BLOB NOT NULL,                 -- float32 (dim,)
    projection BLOB NOT NULL,           -- float32 (dim, dim)
    photos INTEGER NOT NULL,            -- library size when fitted
    pairs INTEGER NOT NULL,             -- learning pairs it was fitted on
    at REAL NOT NULL
);
""",
    4: """
CREATE TABLE IF NOT EXISTS duplicate_pairs (
    a INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    b INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,  -- a < b
    whitened REAL NOT NULL,             -- cosine in the whitened space of the scan that saved it
    inliers INTEGER NOT NULL,
    agreement REAL NOT NULL,
    likeness REAL,                      -- grey levels slid over each other, where keypoints cannot tell
    stretch REAL,                       -- the keypoint map's geometry (PairShape), NULL without a map
    tilt REAL,
    padding_a REAL,
    padding_b REAL,
    PRIMARY KEY (a, b)
);
CREATE INDEX IF NOT EXISTS duplicate_pairs_b ON duplicate_pairs(b);
CREATE TABLE IF NOT EXISTS duplicate_photos (
    file_id INTEGER PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    problem TEXT,                       -- why the last scan could not analyse it (NULL: analysed)
    quality TEXT                        -- JSON: what the keep-best rule measured in it
);
""",
}


class StoreError(Exception):
    """The library database cannot be opened or written; the message says why."""


_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL from Python 3.11
_NEARLY_FULL_BYTES = 1 << 20


def _store_error(action: str, path: Path, exc: Exception) -> StoreError:
    """Say what the user can do. A full disk shows up as SQLITE_FULL, or as an I/O error when SQLite
    cannot even grow its shared-memory file, so the free space is checked too."""
    try:
        nearly_full = shutil.disk_usage(path.parent).free < _NEARLY_FULL_BYTES
    except OSError:
        nearly_full = False
    if nearly_full or getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_FULL:
        return StoreError(f"the disk holding {path.parent} is full: free some space and run again "
                          "(everything saved before is kept)")
    return StoreError(f"{action} {path}: {exc}")


@dataclass(frozen=True)
class FileRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    width: int | None
    height: int | None
    taken_at: float | None
    sharpness: float | None
    has_vector: bool


@dataclass(frozen=True)
class EmbeddedFile:
    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    width: int
    height: int
    taken_at: float | None
    sharpness: float
    vector: np.ndarray
    keypoints: bytes | None = None


@dataclass(frozen=True)
class StoredWhitening:
    key: str
    mean: np.ndarray
    projection: np.ndarray
    photos: int
    pairs: int


@dataclass(frozen=True)
class SkippedFile:
    path: str
    size: int
    mtime_ns: int
    reason: str


_FILE_COLUMNS = "id, path, size, mtime_ns, fingerprint, width, height, taken_at, sharpness, vector IS NOT NULL"


def _file_row(r: tuple) -> FileRow:
    """A FileRow from a row of `SELECT {_FILE_COLUMNS}`."""
    return FileRow(*r[:9], has_vector=bool(r[9]))


class Store:
    """One SQLite connection, serialised by a lock so a GUI search thread and the indexer can share it."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._lock = threading.RLock()
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                version = self.get_meta("schema_version")
                if version is None:
                    self.set_meta("schema_version", str(SCHEMA_VERSION))
                    self.set_meta("generation", "0")
                elif int(version) > SCHEMA_VERSION:
                    raise StoreError(f"{path} was written by a newer vitgallery (schema {version})")
                self._migrate(int(version or 1))
        except (sqlite3.DatabaseError, OSError) as exc:
            raise _store_error("cannot open the library database", path, exc) from exc

    def _migrate(self, from_version: int) -> None:
        for version in range(2, SCHEMA_VERSION + 1):
            # New databases run every migration too; they only CREATE ... IF NOT EXISTS.
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    self._db.execute(statement)
        if from_version < SCHEMA_VERSION:
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- transactions and meta ---------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        """Bumped by every change to the set of vectors; the index file records the one it matches."""
        return int(self.get_meta("generation") or 0)

    def _bump_generation(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # -- files -------------------------------------------------------------------------------------

    def files(self) -> dict[str, FileRow]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files").fetchall()
        return {r[1]: _file_row(r) for r in rows}

    def file_by_path(self, path: str) -> FileRow | None:
        with self._lock:
            r = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
        return _file_row(r) if r else None

    def files_by_ids(self, ids: Iterable[int]) -> dict[int, FileRow]:
        rows = self._select_by_ids(f"SELECT {_FILE_COLUMNS} FROM files WHERE id IN ({{marks}})", ids)
        return {r[0]: _file_row(r) for r in rows}

    def _select_by_ids(self, query: str, ids: Iterable[int]) -> list[tuple]:
        """The rows of `query`, whose `{marks}` stands for the ids, asked in chunks SQLite accepts."""
        ids = [int(i) for i in ids]
        rows: list[tuple] = []
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows += self._db.execute(query.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def count_files(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM files WHERE vector IS NOT NULL").fetchone()[0]

    def add_embedded(self, files: list[EmbeddedFile]) -> list[int]:
        """Insert or replace embedded files in one transaction; returns their ids (index labels)."""
        ids = []
        with self.transaction():
            now = time.time()
            for f in files:
                vector = np.ascontiguousarray(f.vector, dtype=np.float32).tobytes()
                row = self._db.execute(
                    "INSERT INTO files (path, size, mtime_ns, fingerprint, width, height, taken_at, sharpness,"
                    " vector, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns,"
                    " fingerprint=excluded.fingerprint, width=excluded.width, height=excluded.height,"
                    " taken_at=excluded.taken_at, sharpness=excluded.sharpness, vector=excluded.vector,"
                    " indexed_at=excluded.indexed_at RETURNING id",
                    (f.path, f.size, f.mtime_ns, f.fingerprint, f.width, f.height, f.taken_at, f.sharpness,
                     vector, now)).fetchone()
                ids.append(row[0])
                self._db.execute("DELETE FROM skipped WHERE path = ?", (f.path,))
                self._replace_extras(row[0], f)
            self._bump_generation()
        return ids

    def _replace_extras(self, file_id: int, f: EmbeddedFile) -> None:
        """Keypoints, learning views and duplicate evidence follow the content: a changed file loses its
        old ones."""
        if f.keypoints is None:
            self._db.execute("DELETE FROM keypoints WHERE file_id = ?", (file_id,))
        else:
            self._db.execute("INSERT OR REPLACE INTO keypoints (file_id, data) VALUES (?, ?)", (file_id, f.keypoints))
        self._db.execute("DELETE FROM learning_views WHERE file_id = ?", (file_id,))
        self._db.execute("DELETE FROM duplicate_pairs WHERE a = ? OR b = ?", (file_id, file_id))
        self._db.execute("DELETE FROM duplicate_photos WHERE file_id = ?", (file_id,))

    def move_file(self, file_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        with self.transaction():
            self._db.execute("UPDATE files SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
                             (new_path, size, mtime_ns, file_id))

    def move_files(self, moves: list[tuple[int, str, int, int]]) -> None:
        """Give rows (id, new path, size, mtime_ns) at once, so that two rows may swap paths."""
        if not moves:
            return
        with self.transaction():
            # Out of the way first (stored paths never start with '/'), then to the new paths.
            self._db.executemany("UPDATE files SET path = '//moving/' || id WHERE id = ?",
                                 [(move[0],) for move in moves])
            self._db.executemany("UPDATE files SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
                                 [(path, size, mtime_ns, file_id) for file_id, path, size, mtime_ns in moves])

    def delete_files(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self.transaction():
            self._db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in ids])
            self._bump_generation()

    def start_new_model(self, signature: str, dim: int) -> None:
        """A new model: every embedded file is dropped (re-embedded later), never mixed with the new ones."""
        with self.transaction():
            self._db.execute("DELETE FROM files")  # with their keypoints and learning views
            self._db.execute("DELETE FROM whitening")
            self.set_meta("model_signature", signature)
            self.set_meta("dim", str(dim))
            self._bump_generation()

    def vectors(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        rows = self._select_by_ids("SELECT id, vector FROM files WHERE id IN ({marks}) AND vector IS NOT NULL", ids)
        return {file_id: np.frombuffer(blob, dtype=np.float32) for file_id, blob in rows}

    def iter_vectors(self, chunk: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All stored vectors as (ids, matrix) chunks, for rebuilding the index."""
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, vector FROM files WHERE vector IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                    (last, chunk)).fetchall()
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            yield ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            last = int(ids[-1])

    def keypoints(self, ids: Iterable[int]) -> dict[int, bytes]:
        return dict(self._select_by_ids("SELECT file_id, data FROM keypoints WHERE file_id IN ({marks})", ids))

    # -- the whitening learned from the library ---------------------------------------------------

    def files_without_learning_views(self) -> list[FileRow]:
        """Embedded files that do not teach the whitening yet, by id."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE vector IS NOT NULL"
                " AND id NOT IN (SELECT file_id FROM learning_views) ORDER BY id").fetchall()
        return [_file_row(r) for r in rows]

    def add_learning_views(self, items: list[tuple[int, np.ndarray]]) -> None:
        """(file id, (k, dim) vectors of the photo seen k other ways), in one transaction."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO learning_views (file_id, vectors) VALUES (?, ?)",
                [(file_id, np.ascontiguousarray(vectors, dtype=np.float32).tobytes()) for file_id, vectors in items])

    def count_learning_photos(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM learning_views").fetchone()[0]

    def learning_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(own, other): row i of `own` is a photo's vector, row i of `other` the same photo seen another way."""
        own, other = [], []
        with self._lock:
            rows = self._db.execute("SELECT f.vector, v.vectors FROM learning_views v JOIN files f ON f.id = v.file_id"
                                    " WHERE f.vector IS NOT NULL").fetchall()
        for vector_blob, views_blob in rows:
            vector = np.frombuffer(vector_blob, dtype=np.float32)
            views = np.frombuffer(views_blob, dtype=np.float32).reshape(-1, len(vector))
            own.append(np.repeat(vector[None, :], len(views), axis=0))
            other.append(views)
        if not own:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(own), np.concatenate(other)

    def mean_vector(self) -> np.ndarray | None:
        total, count = None, 0
        for _, vectors in self.iter_vectors():
            part = vectors.sum(axis=0, dtype=np.float64)
            total = part if total is None else total + part
            count += len(vectors)
        return None if total is None else (total / count).astype(np.float32)

    def save_whitening(self, whitening: StoredWhitening) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO whitening (id, key, mean, projection, photos, pairs, at)"
                " VALUES (1, ?, ?, ?, ?, ?, ?)",
                (whitening.key, np.ascontiguousarray(whitening.mean, np.float32).tobytes(),
                 np.ascontiguousarray(whitening.projection, np.float32).tobytes(), whitening.photos,
                 whitening.pairs, time.time()))

    def whitening(self) -> StoredWhitening | None:
        with self._lock:
            row = self._db.execute("SELECT key, mean, projection, photos, pairs FROM whitening WHERE id = 1").fetchone()
        if row is None:
            return None
        mean = np.frombuffer(row[1], dtype=np.float32)
        projection = np.frombuffer(row[2], dtype=np.float32).reshape(len(mean), len(mean))
        return StoredWhitening(row[0], mean, projection, row[3], row[4])

    # -- skipped files -----------------------------------------------------------------------------

    def record_skipped(self, path: str, size: int, mtime_ns: int, reason: str) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO skipped (path, size, mtime_ns, reason, at) VALUES (?, ?, ?, ?, ?)",
                             (path, size, mtime_ns, reason, time.time()))

    def skipped(self) -> dict[str, SkippedFile]:
        with self._lock:
            rows = self._db.execute("SELECT path, size, mtime_ns, reason FROM skipped ORDER BY path").fetchall()
        return {r[0]: SkippedFile(*r) for r in rows}

    def forget_skipped(self, paths: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM skipped WHERE path = ?", [(p,) for p in paths])

    # -- duplicate decisions -----------------------------------------------------------------------

    def save_decision(self, key: str, fingerprints: list[str], paths: list[str], decision: str) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO duplicate_decisions (key, fingerprints, paths, decision, at)"
                             " VALUES (?, ?, ?, ?, ?)",
                             (key, json.dumps(sorted(fingerprints)), json.dumps(paths), decision, time.time()))

    def decisions(self) -> list[DecisionRow]:
        with self._lock:
            rows = self._db.execute("SELECT key, fingerprints, paths, decision, at FROM duplicate_decisions"
                                    " ORDER BY at").fetchall()
        return [DecisionRow(r[0], json.loads(r[1]), json.loads(r[2]), r[3], r[4]) for r in rows]

    # -- the last duplicates scan -----------------------------------------------------------------
    # Its evidence is kept per pair and per photo; deleting a file drops its rows (ON DELETE CASCADE)
    # and a changed file loses them (_replace_extras), so what is stored always matches the content.

    def duplicate_pairs(self) -> list[tuple]:
        """(a, b, whitened, inliers, agreement, likeness, stretch, tilt, padding_a, padding_b) of every
        verified pair."""
        with self._lock:
            return self._db.execute("SELECT a, b, whitened, inliers, agreement, likeness, stretch, tilt, padding_a,"
                                    " padding_b FROM duplicate_pairs ORDER BY a, b").fetchall()

    def duplicate_photos(self) -> dict[int, tuple[str | None, str | None]]:
        """file id -> (problem, quality JSON) of the photos the scans looked at."""
        with self._lock:
            rows = self._db.execute("SELECT file_id, problem, quality FROM duplicate_photos").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def save_duplicate_scan(self, pairs: Iterable[tuple], photos: Iterable[tuple[int, str | None, str | None]],
                            info: dict) -> None:
        """Add or replace pairs (as duplicate_pairs returns them) and photos (file id, problem, quality
        JSON), and record what the scan was (`info`, JSON), in one transaction."""
        with self.transaction():
            self._db.executemany("INSERT OR REPLACE INTO duplicate_pairs (a, b, whitened, inliers, agreement,"
                                 " likeness, stretch, tilt, padding_a, padding_b) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 pairs)
            self._db.executemany("INSERT OR REPLACE INTO duplicate_photos (file_id, problem, quality)"
                                 " VALUES (?, ?, ?)", photos)
            self.set_meta("duplicate_scan", json.dumps(info))

    def duplicate_scan_info(self) -> dict | None:
        """What save_duplicate_scan recorded last, or None before any scan."""
        info = self.get_meta("duplicate_scan")
        return None if info is None else json.loads(info)

    def forget_duplicate_scans(self) -> None:
        """Drop all stored duplicate evidence (it was measured another way)."""
        with self.transaction():
            self._db.execute("DELETE FROM duplicate_pairs")
            self._db.execute("DELETE FROM duplicate_photos")
            self._db.execute("DELETE FROM meta WHERE key = 'duplicate_scan'")

    # -- the action log ----------------------------------------------------------------------------

    def log_action(self, kind: str, target: str | None, items: Iterable[ActionItemRow]) -> int:
        """Record an action and what it did to each file, in one transaction; returns its id."""
        with self.transaction():
            action_id = self._db.execute("INSERT INTO actions (kind, target, at) VALUES (?, ?, ?) RETURNING id",
                                         (kind, target, time.time())).fetchone()[0]
            self._db.executemany(
                "INSERT INTO action_items (action_id, source, destination, trash_info, state) VALUES (?, ?, ?, ?, ?)",
                [(action_id, i.source, i.destination, i.trash_info, i.state) for i in items])
        return action_id

    def actions(self, limit: int = 100) -> list[ActionRow]:
        """The latest actions, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, kind, target, at, undone_at FROM actions ORDER BY id DESC LIMIT ?",
                                    (limit,)).fetchall()
        return [ActionRow(*r) for r in rows]

    def action(self, action_id: int) -> ActionRow | None:
        with self._lock:
            r = self._db.execute("SELECT id, kind, target, at, undone_at FROM actions WHERE id = ?",
                                 (action_id,)).fetchone()
        return ActionRow(*r) if r else None

    def action_items(self, action_id: int) -> list[ActionItemRow]:
        with self._lock:
            rows = self._db.execute("SELECT source, destination, trash_info, state, id FROM action_items"
                                    " WHERE action_id = ? ORDER BY id", (action_id,)).fetchall()
        return [ActionItemRow(*r) for r in rows]

    def mark_undone(self, action_id: int, item_states: dict[int, str]) -> None:
        """Record an undo: the new state of each item (by item id) and when."""
        with self.transaction():
            self._db.executemany("UPDATE action_items SET state = ? WHERE id = ?",
                                 [(state, item_id) for item_id, state in item_states.items()])
            self._db.execute("UPDATE actions SET undone_at = ? WHERE id = ?", (time.time(), action_id))


@dataclass(frozen=True)
class DecisionRow:
    key: str
    fingerprints: list[str]
    paths: list[str]
    decision: str
    at: float


@dataclass(frozen=True)
class ActionRow:
    id: int
    kind: str
    target: str | None
    at: float
    undone_at: float | None


@dataclass(frozen=True)
class ActionItemRow:
    source: str
    destination: str | None
    trash_info: str | None
    state: str
    id: int | None = None  # set once stored


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the store lock; nested use joins the outer transaction."""

    def __init__(self, store: Store):
        self.store = store
        self.outer = False

    def __enter__(self) -> _Transaction:
        self.store._lock.acquire()
        self.outer = not self.store._db.in_transaction
        if self.outer:
            try:
                self.store._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self.store._lock.release()  # __exit__ does not run when __enter__ raises
                raise _store_error("could not save to", self.store.path, exc) from exc
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        db = self.store._db
        try:
            if not self.outer:
                return
            if exc_type is None:
                try:
                    db.execute("COMMIT")
                    return
                except sqlite3.Error as commit_error:
                    exc = commit_error
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                # A full disk or a read-only folder: nothing of this transaction was written.
                raise _store_error("could not save to", self.store.path, exc) from exc
        finally:
            self.store._lock.release()

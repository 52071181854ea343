"""SQLite store: the truth about a library (files, vectors, skipped files, model, schema).

WAL journal with synchronous=NORMAL: a crash of the app loses nothing committed. A power cut or an
OS crash can lose the commits since the last checkpoint, which SQLite runs once the WAL holds 1000
pages (wal_autocheckpoint): about 40 batches of 32 photos, more if another process kept a read open
meanwhile. It never corrupts the file; the lost photos are simply embedded again on the next run.
FULL would sync every commit, a few milliseconds per batch, to save re-embedding seconds of work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SCHEMA_VERSION = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative to the library root, '/'-separated (see _db_path)
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

# Each migration only adds tables, columns and indexes, so a library written by an older vitgallery
# opens unchanged. Schema 4 also stores names that are not valid UTF-8 as BLOBs (_db_path), which an
# older vitgallery could not read back: it refuses the newer schema instead.
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
    state TEXT NOT NULL                 -- 'pending' (about to move), 'done', 'restored', or what went wrong
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
    vectors BLOB NOT NULL               -- float32 (k, dim): the photo's teaching views (edited, mirrored), embedded
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
CREATE INDEX IF NOT EXISTS files_vector_generation ON files(vector_generation);
""",
    5: """
CREATE TABLE IF NOT EXISTS group_names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    fingerprints TEXT NOT NULL,         -- JSON list, sorted: the group's photos when it was named
    at REAL NOT NULL
);
""",
    6: """
CREATE TABLE IF NOT EXISTS separated_pairs (
    first TEXT NOT NULL,                -- the fingerprints of two photos the user said are not
    second TEXT NOT NULL,               -- duplicates of each other, first < second
    at REAL NOT NULL,
    PRIMARY KEY (first, second)
);
""",
    7: """
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
    8: "",  # a column only (_ADDED_COLUMNS)
    9: """
CREATE TABLE IF NOT EXISTS away_files (
    fingerprint TEXT NOT NULL,          -- the content of a photo the app's own action took out of the photo
    size INTEGER NOT NULL,              -- folder (trashed, moved away): what the library knew of it, kept
    width INTEGER, height INTEGER,      -- for an undo to bring back without the model (Store.bring_back)
    taken_at REAL, sharpness REAL,
    vector BLOB NOT NULL,
    keypoints BLOB, looks BLOB,         -- its keypoints row
    views BLOB,                         -- its learning views
    file_id INTEGER NOT NULL,           -- its id, given back where still free (its scan evidence holds then)
    scanned INTEGER NOT NULL,           -- 1: it had a duplicate_photos row, these two
    scan_problem TEXT, scan_quality TEXT,
    at REAL NOT NULL                    -- when it went (indexing.AWAY_KEPT_S)
);
CREATE INDEX IF NOT EXISTS away_files_fingerprint ON away_files(fingerprint);
CREATE TABLE IF NOT EXISTS away_pairs (  -- the duplicate_pairs rows of photos in away_files
    a INTEGER NOT NULL, b INTEGER NOT NULL,
    fingerprint_a TEXT NOT NULL,        -- the contents the evidence is of: it comes back only to them
    fingerprint_b TEXT NOT NULL,
    whitening TEXT,                     -- the whitening its cosine is in (the scan's when put away)
    whitened REAL NOT NULL, inliers INTEGER NOT NULL, agreement REAL NOT NULL, likeness REAL,
    stretch REAL, tilt REAL, padding_a REAL, padding_b REAL,
    PRIMARY KEY (a, b)
);
CREATE INDEX IF NOT EXISTS away_pairs_b ON away_pairs(b);
""",
    10: """
CREATE TABLE IF NOT EXISTS keep_choices (
    key TEXT PRIMARY KEY,               -- the group's key (its members' fingerprints): a changed group is the rule's again
    paths TEXT NOT NULL,                -- JSON list: the photos the user keeps of it, instead of the rule's
    at REAL NOT NULL
);
""",
}
# A library that cannot be written is read without migrating from this version on: schema 9 only added
# away_files, which only actions and indexing use, and they need write access anyway; schema 10 the
# user's keep choices, which such a library has none of (Store.keep_choices), and the folders a move
# made, which only its undo reads.
_READ_AS_IS_FROM_VERSION = 8
# Columns added by a migration (ALTER TABLE has no IF NOT EXISTS): version -> (table, column, definition).
_ADDED_COLUMNS = {
    # The generation that wrote the row's vector: an index file catches up on the rows written after it.
    4: [("files", "vector_generation", "INTEGER NOT NULL DEFAULT 0")],
    # A photo's tiny grey copies (photo_features.PhotoFeatures.looks_to_bytes), kept with keypoints of the
    # same recipe, so that a duplicates scan need not decode it; NULL: indexed before (keypoints of
    # another recipe), the scan analyses the photo and keeps what it found.
    8: [("keypoints", "looks", "BLOB")],
    # The folders a move made (JSON list, deepest first): its undo removes those it leaves empty.
    10: [("actions", "made_folders", "TEXT")],
}


class StoreError(Exception):
    """The library database cannot be opened or written; the message says why."""


_SQLITE_READONLY = 8  # the sqlite3 constants from Python 3.11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_NEARLY_FULL_BYTES = 1 << 20
# A stored vector is the model's output, L2-normalised: anything else was damaged after it was written.
_UNIT_LENGTH_TOLERANCE = 1e-3
_PAIRS_READ_AT_ONCE = 8192  # duplicate pairs converted to numbers at a time
_DAMAGE_SCAN_CHUNK = 10_000  # rows checked at a time by drop_damaged_rows (about 15 MB of 384-d vectors)
# A superset of the paths path_is_confined refuses, on any system: not text, empty, holding a NUL, '..'
# as a part, absolute, or holding a backslash or a drive's colon (Windows)
_PATHS_THAT_MAY_LEAVE = (
    "SELECT id, path FROM files WHERE typeof(path) != 'text' OR path = '' OR instr(CAST(path AS BLOB), x'00')"
    " OR substr(path, 1, 1) = '/' OR path = '..' OR substr(path, 1, 3) = '../' OR substr(path, -3) = '/..'"
    " OR instr(path, '/../') OR instr(path, '\\') OR instr(path, ':')")


def disk_nearly_full(folder: Path) -> bool:
    """Whether the disk holding `folder` has no room left to write a library's pages."""
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def _disk_full(path: Path, exc: Exception) -> bool:
    """A full disk shows up as SQLITE_FULL, or as an I/O error when SQLite cannot even grow its
    shared-memory file, so the free space is checked too."""
    return disk_nearly_full(path.parent) or getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_FULL


def _store_error(action: str, path: Path, exc: Exception) -> StoreError:
    """Say what the user can do."""
    if _disk_full(path, exc):
        return StoreError(f"the disk holding {path.parent} is full: free some space and run again "
                          "(everything saved before is kept)")
    if _is_read_only(exc):
        locked = [p.name or str(p) for p in (path.parent, path, Path(f"{path}-wal"), Path(f"{path}-shm"))
                  if p.exists() and not os.access(p, os.W_OK)]
        return StoreError(f"the library {path.parent} is read-only: searching works, indexing needs write access "
                          f"(cannot write: {', '.join(locked) or path.name})")
    if isinstance(exc, UnicodeDecodeError) or "malformed" in str(exc) or "not a database" in str(exc):
        reason = "a garbled message" if isinstance(exc, UnicodeDecodeError) else exc
        return StoreError(f"{action} {path}: SQLite cannot read it ({reason}): run `vitgallery repair --library "
                          f"{path.parent}`")
    return StoreError(f"{action} {path}: {exc}")


def _is_read_only(exc: Exception) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return (isinstance(exc, sqlite3.Error) and (code == _SQLITE_READONLY or "readonly" in str(exc))) or \
        isinstance(exc, PermissionError)


def damaged(path: Path, what: str) -> StoreError:
    """The message for a database whose content vitgallery cannot use, with the way out."""
    return StoreError(f"the library database {path} is damaged ({what}): run `vitgallery repair --library "
                      f"{path.parent}`")


def mean_of(chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """The mean of Store.iter_vectors' chunks (None without any)."""
    total, count = None, 0
    for _, vectors in chunks:
        part = vectors.sum(axis=0, dtype=np.float64)
        total = part if total is None else total + part
        count += len(vectors)
    return None if total is None else (total / count).astype(np.float32)


def whitening_fingerprint(mean: np.ndarray, projection: np.ndarray) -> str:
    """The key a whitening is stored under: its own bytes hashed, so damaged bytes no longer match it."""
    return hashlib.sha1(np.ascontiguousarray(mean, np.float32).tobytes()
                        + np.ascontiguousarray(projection, np.float32).tobytes()).hexdigest()[:12]


def _damaged_vector_ids(rows: list[tuple[int, object]], dim: int | None) -> list[int]:
    """The ids among (id, vector blob) whose vector _usable_vector refuses, checked a matrix at a time."""
    if dim is None:
        return [file_id for file_id, blob in rows if _usable_vector(blob, None) is None]
    sized = [(file_id, blob) for file_id, blob in rows if isinstance(blob, bytes) and len(blob) == 4 * dim]
    damaged = [file_id for file_id, blob in rows if not (isinstance(blob, bytes) and len(blob) == 4 * dim)]
    if sized:
        matrix = np.frombuffer(b"".join(blob for _, blob in sized), dtype=np.float32).reshape(len(sized), dim)
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.einsum("ij,ij->i", matrix, matrix)
        usable = np.isfinite(matrix).all(axis=1) & (np.abs(norms - 1.0) <= 2 * _UNIT_LENGTH_TOLERANCE)
        damaged += [file_id for (file_id, _), ok in zip(sized, usable.tolist()) if not ok]
    return damaged


def _usable_views(blob: object, dim: int | None) -> bool:
    if not isinstance(blob, bytes) or not blob or (dim is not None and len(blob) % (4 * dim)) or len(blob) % 4:
        return False
    return bool(np.isfinite(np.frombuffer(blob, dtype=np.float32)).all())


def _usable_vector(blob: object, dim: int | None) -> np.ndarray | None:
    """A stored vector, or None when it cannot be the model's (wrong length, not finite, not unit length)."""
    if not isinstance(blob, bytes) or not blob or len(blob) % 4 or (dim is not None and len(blob) != 4 * dim):
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    if not np.isfinite(vector).all() or abs(float(np.dot(vector, vector)) - 1.0) > 2 * _UNIT_LENGTH_TOLERANCE:
        return None
    return vector


def _db_path(path: str) -> str | bytes:
    """A path as the database holds it: text when it is valid UTF-8 (every name on most systems),
    else the OS's own bytes as a BLOB. Python gives such names with surrogate escapes, which SQLite
    text cannot hold; the BLOB keeps them exactly, and equal names still compare equal."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _text_from_db(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _path_from_db(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def path_is_confined(path: str) -> bool:
    """Whether a stored path stays inside the photo root. The database is a file anyone could have
    edited: a row such as `../../etc/hostname` or `/etc/hostname` must never reach a search result,
    an action or the decoder."""
    if not path or "\0" in path or path.startswith("/") or ".." in path.split("/"):
        return False
    if os.name == "nt":  # backslashes and drives too
        native = Path(path)
        return not native.is_absolute() and not native.drive and ".." not in native.parts
    return True


def _db_text(text: str) -> str:
    """Free text (a skip reason) that may quote a name: odd bytes escaped, never lost in an error."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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
    looks: bytes | None = None  # photo_features.PhotoFeatures.looks_to_bytes(), with keypoints of that recipe


@dataclass(frozen=True)
class StoredWhitening:
    key: str
    mean: np.ndarray
    projection: np.ndarray
    photos: int
    pairs: int


@dataclass(frozen=True)
class VectorChanges:
    generation: int  # the database's generation when asked
    live: np.ndarray  # int64 ids of every row with a vector, sorted
    changed: np.ndarray  # int64 ids whose vector was written after the generation asked about


@dataclass(frozen=True)
class SkippedFile:
    path: str
    size: int
    mtime_ns: int
    reason: str


_FILE_COLUMNS = "id, path, size, mtime_ns, fingerprint, width, height, taken_at, sharpness, vector IS NOT NULL"


def _file_row(r: tuple) -> FileRow:
    """A FileRow from a row of `SELECT {_FILE_COLUMNS}`."""
    return FileRow(r[0], _path_from_db(r[1]), *r[2:9], has_vector=bool(r[9]))


class Store:
    """One SQLite connection, serialised by a lock so a GUI search thread and the indexer can share it."""

    def __init__(self, path: Path, *, repair: bool = False):
        """Open (or create) the database. `repair` (vitgallery repair) accepts a damaged schema version."""
        self.path = path
        self.read_only = False  # a database file or folder that cannot be written: searching still works
        self.repaired: list[str] = []  # what opening with `repair` mended
        self._lock = threading.RLock()
        self._warned_unconfined = False
        self._warned_damaged = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            with self.transaction():
                self._create_or_migrate(repair)
        except (sqlite3.DatabaseError, OSError, UnicodeDecodeError) as exc:
            if not (_disk_full(path, exc) and self._committed_in_file()):
                raise _store_error("cannot open the library database", path, exc) from exc
            # A full disk: what the library holds is read as it is (status, search), as on a read-only
            # disk; a write says the disk is full.
            if getattr(self, "_db", None) is not None:
                self._db.close()
            try:
                self._db = self._connect_immutable()
                self._db.text_factory = _text_from_db
                self._create_or_migrate(repair)
            except (sqlite3.DatabaseError, UnicodeDecodeError) as again:
                raise _store_error("cannot open the library database", path, exc) from again

    def _committed_in_file(self) -> bool:
        """Whether the database file holds every commit (no WAL with commits beside it): it can be read as it is."""
        wal = Path(f"{self.path}-wal")
        return self.path.is_file() and not (wal.exists() and wal.stat().st_size)

    def _connect(self) -> sqlite3.Connection:
        """A connection in WAL mode, or a read-only one when the database file or its folder cannot be
        written: SQLite would fail to make the WAL's shared-memory file, or make it read-only too (and
        then refuse to write after the permissions are fixed). Nobody can write there, so the file is
        read as it is, unless a WAL still holds commits."""
        if self.path.exists() and not os.access(self.path, os.W_OK) and self._committed_in_file():
            db = self._connect_immutable()
        else:
            try:
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if not _is_read_only(exc):
                    raise
                db = self._connect_immutable()
        self.read_only = self.read_only or not os.access(self.path, os.W_OK)
        # Text that is not UTF-8 (a row some other tool wrote, a damaged one) reads with its bytes
        # escaped, as file names do, instead of failing the whole query.
        db.text_factory = _text_from_db
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _connect_immutable(self) -> sqlite3.Connection:
        self.read_only = True
        return sqlite3.connect(self.path.absolute().as_uri() + "?immutable=1", uri=True, check_same_thread=False,
                               isolation_level=None)

    def _create_or_migrate(self, repair: bool) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self.set_meta("generation", "0")
        elif not version.isdigit():
            if not repair:
                raise damaged(self.path, f"its schema version is {version!r}")
            self.repaired.append(f"reset the schema version ({version!r} was not a number)")
            version = "1"  # every migration only adds what is missing: running them all is safe
            self.set_meta("schema_version", version)
        elif int(version) > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer vitgallery (schema {version})")
        elif self.read_only and int(version) >= _READ_AS_IS_FROM_VERSION:
            return  # cannot be migrated, and what it lacks is only used by writing
        self._migrate(int(version or 1))

    def _migrate(self, from_version: int) -> None:
        for version in range(2, SCHEMA_VERSION + 1):
            # New databases run every migration too; they only add what is not there yet.
            for table, column, definition in _ADDED_COLUMNS.get(version, []):
                columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
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
        return None if row is None else str(_path_from_db(row[0]))

    def set_meta(self, key: str, value: str) -> None:
        """`value` may be a path, of any name the OS gives (see _db_path)."""
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _db_path(value)))

    def _meta_number(self, key: str) -> int | None:
        value = self.get_meta(key)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise damaged(self.path, f"its {key} is {value!r}, not a number") from None

    @property
    def dim(self) -> int | None:
        """The dimension of the library's vectors (None before the first photo is embedded)."""
        return self._meta_number("dim")

    def _meta_strings(self, key: str) -> list[str]:
        """A meta value that holds a JSON list of strings ([] where damaged or missing)."""
        value = self.get_meta(key)
        try:
            items = json.loads(value) if value else []
        except ValueError:
            return []
        return [item for item in items if isinstance(item, str)] if isinstance(items, list) else []

    def mount_points(self) -> list[str]:
        """Folders under the root that were mount points when last seen (see scan.ScanResult)."""
        return [p for p in self._meta_strings("mount_points") if path_is_confined(p)]

    def set_mount_points(self, paths: list[str]) -> None:
        with self.transaction():
            self.set_meta("mount_points", json.dumps(sorted(set(paths))))

    def former_roots(self) -> list[Path]:
        """The places the photo folder had before it was renamed or moved, oldest first (the action log
        names files where they were then)."""
        return [Path(p) for p in self._meta_strings("former_roots") if Path(p).is_absolute()]

    def add_former_root(self, old: Path, new: Path) -> None:
        """The photo folder moved from `old` to `new` (a folder moved back is no longer a former place)."""
        kept = [str(p) for p in self.former_roots() if p not in (old, new)]
        with self.transaction():
            self.set_meta("former_roots", json.dumps([*kept, str(old)]))

    @property
    def generation(self) -> int:
        """Bumped by every change to the set of vectors; the index file records the one it matches."""
        return self._meta_number("generation") or 0

    def _bump_generation(self) -> int:
        """The next generation, inside the caller's transaction."""
        return int(self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                                    " RETURNING value").fetchone()[0])

    def vector_changes(self, since: int) -> VectorChanges:
        """What an index that reflects generation `since` lacks. The generation is read first, so an
        index caught up with the answer reflects at least that generation (later commits are
        caught up again next time: adding a vector twice only rewrites it)."""
        with self._lock:
            generation = self.generation
            live = self._db.execute("SELECT id, path FROM files WHERE vector IS NOT NULL ORDER BY id").fetchall()
            changed = self._db.execute("SELECT id FROM files WHERE vector_generation > ? AND vector IS NOT NULL"
                                       " ORDER BY id", (since,)).fetchall()
        inside = [file_id for file_id, path in live if path_is_confined(_path_from_db(path))]
        self._note_unconfined(len(live) - len(inside))
        return VectorChanges(generation, np.array(inside, dtype=np.int64),
                             np.intersect1d(np.array([r[0] for r in changed], dtype=np.int64), inside))

    # -- files -------------------------------------------------------------------------------------

    def _file_rows(self, rows: Iterable[tuple]) -> list[FileRow]:
        """FileRows of `SELECT {_FILE_COLUMNS}` rows, less those whose path leaves the root."""
        converted = [_file_row(r) for r in rows]
        inside = [row for row in converted if path_is_confined(row.path)]
        self._note_unconfined(len(converted) - len(inside))
        return inside

    def _note_unconfined(self, count: int) -> None:
        if count and not self._warned_unconfined:
            self._warned_unconfined = True
            log.warning("%s: %d rows name files outside the photo folder; they are ignored "
                        "(vitgallery repair removes them)", self.path, count)

    def files(self) -> dict[str, FileRow]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files").fetchall()
        return {row.path: row for row in self._file_rows(rows)}

    def file_stamps(self) -> tuple[dict[tuple[str, int, int], int], list[int]]:
        """(path, size, mtime_ns) of every row with a vector, to its id, and the ids of the rows without one,
        in one pass over the table: what tells a file the library holds as it is from the rest
        (indexing.set_aside_unchanged) without a FileRow a row, which at 100,000 rows cost half a second
        of the window's start."""
        with self._lock:
            rows = self._rows_as_plain_text("SELECT path, size, mtime_ns, id, vector IS NOT NULL FROM files")
        stamps = {(path if type(path) is str else _path_from_db(path), size, mtime_ns): file_id
                  for path, size, mtime_ns, file_id, embedded in rows if embedded}
        return stamps, [row[3] for row in rows if not row[4]] if len(stamps) < len(rows) else []

    def _rows_as_plain_text(self, query: str) -> list[tuple]:
        """The rows of `query`, their texts decoded by SQLite (a Python call a text is most of reading
        100,000 rows), or the careful way (_text_from_db) where a damaged text is not UTF-8. Under the lock."""
        self._db.text_factory = str
        try:
            return self._db.execute(query).fetchall()
        except sqlite3.OperationalError:
            self._db.text_factory = _text_from_db
            return self._db.execute(query).fetchall()
        finally:
            self._db.text_factory = _text_from_db

    def file_by_path(self, path: str) -> FileRow | None:
        with self._lock:
            r = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (_db_path(path),)).fetchone()
        return next(iter(self._file_rows([r])), None) if r else None

    def files_by_ids(self, ids: Iterable[int]) -> dict[int, FileRow]:
        rows = self._select_by_ids(f"SELECT {_FILE_COLUMNS} FROM files WHERE id IN ({{marks}})", ids)
        return {row.id: row for row in self._file_rows(rows)}

    def _select_by_ids(self, query: str, ids: Iterable[int]) -> list[tuple]:
        """The rows of `query`, whose `{marks}` stands for the ids, asked in chunks SQLite accepts."""
        ids = [int(i) for i in ids]
        rows: list[tuple] = []
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows += self._db.execute(query.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def sample_files(self, count: int) -> list[FileRow]:
        """Up to `count` embedded photos, drawn at random."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE vector IS NOT NULL "
                                    "ORDER BY random() LIMIT ?", (count,)).fetchall()
        return self._file_rows(rows)

    def count_files(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM files WHERE vector IS NOT NULL").fetchone()[0]

    def add_embedded(self, files: list[EmbeddedFile], wanted_ids: list[int | None] | None = None) -> list[int]:
        """Insert or replace embedded files in one transaction; returns their ids (index labels). A new
        row takes its `wanted_ids` entry as its id where one is given (free: the caller checked)."""
        ids = []
        with self.transaction():
            generation = self._bump_generation()
            now = time.time()
            for f, wanted_id in zip(files, wanted_ids or [None] * len(files), strict=True):
                vector = np.ascontiguousarray(f.vector, dtype=np.float32).tobytes()
                row = self._db.execute(
                    "INSERT INTO files (id, path, size, mtime_ns, fingerprint, width, height, taken_at, sharpness,"
                    " vector, indexed_at, vector_generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns,"
                    " fingerprint=excluded.fingerprint, width=excluded.width, height=excluded.height,"
                    " taken_at=excluded.taken_at, sharpness=excluded.sharpness, vector=excluded.vector,"
                    " indexed_at=excluded.indexed_at, vector_generation=excluded.vector_generation RETURNING id",
                    (wanted_id, _db_path(f.path), f.size, f.mtime_ns, f.fingerprint, f.width, f.height, f.taken_at,
                     f.sharpness, vector, now, generation)).fetchone()
                ids.append(row[0])
                self._db.execute("DELETE FROM skipped WHERE path = ?", (_db_path(f.path),))
                self._replace_extras(row[0], f)
        return ids

    def _replace_extras(self, file_id: int, f: EmbeddedFile) -> None:
        """Keypoints, learning views and duplicate evidence follow the content: a changed file loses its
        old ones."""
        if f.keypoints is None:
            self._db.execute("DELETE FROM keypoints WHERE file_id = ?", (file_id,))
        else:
            self._db.execute("INSERT OR REPLACE INTO keypoints (file_id, data, looks) VALUES (?, ?, ?)",
                             (file_id, f.keypoints, f.looks))
        self._db.execute("DELETE FROM learning_views WHERE file_id = ?", (file_id,))
        self._db.execute("DELETE FROM duplicate_pairs WHERE a = ? OR b = ?", (file_id, file_id))
        self._db.execute("DELETE FROM duplicate_photos WHERE file_id = ?", (file_id,))

    def move_files(self, moves: list[tuple[int, str, int, int]]) -> None:
        """Give rows (id, new path, size, mtime_ns) at once, so that two rows may swap paths."""
        if not moves:
            return
        with self.transaction():
            # Out of the way first (stored paths never start with '/'), then to the new paths.
            self._db.executemany("UPDATE files SET path = '//moving/' || id WHERE id = ?",
                                 [(move[0],) for move in moves])
            self._db.executemany("UPDATE files SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
                                 [(_db_path(path), size, mtime_ns, file_id) for file_id, path, size, mtime_ns in moves])

    def files_without_keypoints(self) -> list[int]:
        """Embedded files with no keypoints row (a photo too flat for any keypoint has none either)."""
        with self._lock:
            return [file_id for (file_id,) in self._db.execute(
                "SELECT id FROM files WHERE vector IS NOT NULL AND id NOT IN (SELECT file_id FROM keypoints)")]

    def delete_files(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self.transaction():
            self._db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in ids])
            self._bump_generation()

    # -- photos the app's own actions took away, kept for an undo -----------------------------------

    def put_away_files(self, ids: Iterable[int]) -> None:
        """Delete the rows of photos the app's own action took out of the photo folder, keeping what was
        learned of each by its content, its id and its duplicate scan evidence, so that an undo brings
        it back without the model and its scan still holds (bring_back)."""
        ids = list(ids)
        if not ids:
            return
        now = time.time()
        evidence = "whitened, inliers, agreement, likeness, stretch, tilt, padding_a, padding_b"
        whitening = (self.duplicate_scan_info() or {}).get("whitening")
        with self.transaction():
            self._db.executemany(
                "INSERT INTO away_files (fingerprint, size, width, height, taken_at, sharpness, vector, keypoints,"
                " looks, views, file_id, scanned, scan_problem, scan_quality, at) SELECT f.fingerprint, f.size,"
                " f.width, f.height, f.taken_at, f.sharpness, f.vector, k.data, k.looks, v.vectors, f.id,"
                " p.file_id IS NOT NULL, p.problem, p.quality, ? FROM files f"
                " LEFT JOIN keypoints k ON k.file_id = f.id LEFT JOIN learning_views v ON v.file_id = f.id"
                " LEFT JOIN duplicate_photos p ON p.file_id = f.id WHERE f.id = ? AND f.vector IS NOT NULL",
                [(now, file_id) for file_id in ids])
            self._db.executemany(
                f"INSERT OR REPLACE INTO away_pairs (a, b, fingerprint_a, fingerprint_b, whitening, {evidence})"
                f" SELECT d.a, d.b, fa.fingerprint, fb.fingerprint, ?, {evidence} FROM duplicate_pairs d"
                " JOIN files fa ON fa.id = d.a JOIN files fb ON fb.id = d.b WHERE d.a = ? OR d.b = ?",
                [(whitening, file_id, file_id) for file_id in ids])
            self.delete_files(ids)

    def away_sizes(self) -> set[int]:
        """The sizes of the contents kept away: only a file of one of them can be brought back."""
        with self._lock:
            return {size for (size,) in self._db.execute("SELECT DISTINCT size FROM away_files")}

    def away_counts(self) -> tuple[int, int]:
        """(photos kept away, their learning views): still the library's for its whitening (see
        IndexRun._refresh_whitening)."""
        with self._lock:
            photos, view_bytes = self._db.execute("SELECT COUNT(*), SUM(LENGTH(views)) FROM away_files").fetchone()
        return photos, ((view_bytes or 0) // (4 * self.dim) if self.dim else 0)

    def bring_back(self, found: Iterable[tuple[str, int, int, str]]) -> tuple[list[str], bool]:
        """Give files (path, size, mtime_ns, fingerprint) whose content was put away a row with what
        put_away_files kept of it, as if embedded now (a kept copy serves one file): (their paths, whether
        each got its old id back, and with it its duplicate scan evidence, in the kept scan's whitening).
        A kept vector that is damaged, or of another dimension, is dropped: that file is embedded again."""
        dim = self.dim
        paths, as_before = [], True
        whitening = (self.duplicate_scan_info() or {}).get("whitening")
        with self.transaction():
            for path, size, mtime_ns, fingerprint in found:
                kept = self._db.execute(
                    "SELECT rowid, width, height, taken_at, sharpness, vector, keypoints, looks, views, file_id,"
                    " scanned, scan_problem, scan_quality FROM away_files WHERE fingerprint = ? AND size = ?"
                    " ORDER BY at DESC LIMIT 1", (fingerprint, size)).fetchone()
                if kept is None:
                    continue
                self._db.execute("DELETE FROM away_files WHERE rowid = ?", (kept[0],))
                vector = _usable_vector(kept[5], dim)
                if vector is None:
                    continue
                old_id = kept[9]
                free = self._db.execute("SELECT 1 FROM files WHERE id = ? OR path = ?",
                                        (old_id, _db_path(path))).fetchone() is None
                record = EmbeddedFile(path, size, mtime_ns, fingerprint, *kept[1:5], vector, *kept[6:8])
                [file_id] = self.add_embedded([record], [old_id if free else None])
                if _usable_views(kept[8], dim):
                    self.add_learning_views([(file_id, np.frombuffer(kept[8], dtype=np.float32))])
                if file_id == old_id:
                    as_before = self._restore_evidence(file_id, kept[10:13], whitening) and as_before
                else:
                    as_before = False
                    self._db.execute("DELETE FROM away_pairs WHERE a = ? OR b = ?", (old_id, old_id))
                paths.append(path)
        return paths, as_before

    def _restore_evidence(self, file_id: int, scan: tuple, whitening: str | None) -> bool:
        """The duplicate scan evidence of a photo back under its id: of each pair whose other photo is in
        the library with the content the pair was measured on (a pair with a photo still away waits).
        False when a pair's cosine is in another whitening than the kept scan's (refitted while the photo
        was away): the next scan scores it again, without matching it again."""
        scanned, problem, quality = scan
        if scanned:
            self._db.execute("INSERT OR REPLACE INTO duplicate_photos (file_id, problem, quality) VALUES (?, ?, ?)",
                             (file_id, problem, quality))
        evidence = "whitened, inliers, agreement, likeness, stretch, tilt, padding_a, padding_b"
        present = ("(a = ? OR b = ?) AND EXISTS (SELECT 1 FROM files WHERE id = a AND fingerprint = fingerprint_a)"
                   " AND EXISTS (SELECT 1 FROM files WHERE id = b AND fingerprint = fingerprint_b)")
        self._db.execute(f"INSERT OR REPLACE INTO duplicate_pairs (a, b, {evidence}) SELECT a, b, {evidence}"
                         f" FROM away_pairs WHERE {present}", (file_id, file_id))
        same_whitening = self._db.execute(f"SELECT COUNT(*) = 0 FROM away_pairs WHERE {present} AND whitening IS NOT ?",
                                          (file_id, file_id, whitening)).fetchone()[0]
        self._db.execute(f"DELETE FROM away_pairs WHERE {present}", (file_id, file_id))
        return bool(same_whitening)

    def forget_away_files(self, before: float) -> None:
        """Drop what was kept of photos taken away before this time (seconds since the epoch)."""
        with self.transaction():
            self._db.execute("DELETE FROM away_pairs WHERE a IN (SELECT file_id FROM away_files WHERE at < ?)"
                             " OR b IN (SELECT file_id FROM away_files WHERE at < ?)", (before, before))
            self._db.execute("DELETE FROM away_files WHERE at < ?", (before,))

    def start_new_model(self, signature: str, dim: int) -> None:
        """A new model: every embedded file is dropped (re-embedded later), never mixed with the new ones."""
        with self.transaction():
            self._db.execute("DELETE FROM files")  # with their keypoints and learning views
            self._db.execute("DELETE FROM away_files")
            self._db.execute("DELETE FROM away_pairs")
            self._db.execute("DELETE FROM whitening")
            self.set_meta("model_signature", signature)
            self.set_meta("dim", str(dim))
            self._bump_generation()

    def vectors(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The usable vectors of these rows; a damaged one is left out (index drops its row)."""
        rows = self._select_by_ids("SELECT id, vector FROM files WHERE id IN ({marks}) AND vector IS NOT NULL", ids)
        return self._usable_vectors(rows)

    def _usable_vectors(self, rows: Iterable[tuple[int, bytes]]) -> dict[int, np.ndarray]:
        dim, vectors, damaged_rows = self.dim, {}, 0
        for file_id, blob in rows:
            vector = _usable_vector(blob, dim)
            if vector is None:
                damaged_rows += 1
            else:
                vectors[file_id] = vector
        if damaged_rows and not self._warned_damaged:
            self._warned_damaged = True
            log.warning("%s: %d damaged vectors are left out (the next index embeds those photos again)",
                        self.path, damaged_rows)
        return vectors

    def iter_vectors(self, chunk: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All stored vectors as (ids, matrix) chunks, for rebuilding the index."""
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, vector, path FROM files WHERE vector IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
                    (last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            inside = [r for r in rows if path_is_confined(_path_from_db(r[2]))]
            self._note_unconfined(len(rows) - len(inside))
            usable = self._usable_vectors((r[0], r[1]) for r in inside)
            if usable:
                yield np.fromiter(usable, np.int64, len(usable)), np.stack(list(usable.values()))

    def keypoints(self, ids: Iterable[int]) -> dict[int, bytes]:
        return dict(self._select_by_ids("SELECT file_id, data FROM keypoints WHERE file_id IN ({marks})", ids))

    def photo_features(self, ids: Iterable[int]) -> dict[int, tuple[bytes, bytes]]:
        """file id -> (keypoints, looks) of the photos whose keypoints came with their grey copies."""
        rows = self._select_by_ids("SELECT file_id, data, looks FROM keypoints WHERE file_id IN ({marks})"
                                   " AND looks IS NOT NULL", ids)
        return {row[0]: (row[1], row[2]) for row in rows}

    def looks(self, ids: Iterable[int]) -> dict[int, bytes]:
        """file id -> the grey copies kept with its keypoints (see photo_features), for those that have them."""
        return dict(self._select_by_ids("SELECT file_id, looks FROM keypoints WHERE file_id IN ({marks})"
                                        " AND looks IS NOT NULL", ids))

    def photo_feature_ids(self, ids: Iterable[int]) -> set[int]:
        """Those of `ids` whose keypoints came with their grey copies (see photo_features)."""
        return {row[0] for row in self._select_by_ids(
            "SELECT file_id FROM keypoints WHERE file_id IN ({marks}) AND looks IS NOT NULL", ids)}

    def save_photo_features(self, rows: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Keep (file id, keypoints, looks) found for photos indexed before the grey copies were kept
        (the duplicates scan analyses those): they replace the photos' keypoints of the older recipe."""
        with self.transaction():
            self._db.executemany("INSERT OR REPLACE INTO keypoints (file_id, data, looks) SELECT id, ?, ? FROM files"
                                 " WHERE id = ?", [(kp, looks, file_id) for file_id, kp, looks in rows])

    # -- the whitening learned from the library ---------------------------------------------------

    def files_without_learning_views(self) -> list[FileRow]:
        """Embedded files that do not teach the whitening yet, by id."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE vector IS NOT NULL"
                " AND id NOT IN (SELECT file_id FROM learning_views) ORDER BY id").fetchall()
        return self._file_rows(rows)

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
        dim = self.dim
        for vector_blob, views_blob in rows:
            vector = _usable_vector(vector_blob, dim)
            if vector is None or not isinstance(views_blob, bytes) or len(views_blob) % (4 * len(vector)):
                continue  # damaged: index drops the row
            views = np.frombuffer(views_blob, dtype=np.float32).reshape(-1, len(vector))
            if not len(views) or not np.isfinite(views).all():
                continue
            own.append(np.repeat(vector[None, :], len(views), axis=0))
            other.append(views)
        if not own:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(own), np.concatenate(other)

    def mean_vector(self) -> np.ndarray | None:
        return mean_of(self.iter_vectors())

    def save_whitening(self, whitening: StoredWhitening) -> None:
        """Also a new generation: every vector of the index changes with the whitening."""
        with self.transaction():
            self._bump_generation()
            self._db.execute(
                "INSERT OR REPLACE INTO whitening (id, key, mean, projection, photos, pairs, at)"
                " VALUES (1, ?, ?, ?, ?, ?, ?)",
                (whitening.key, np.ascontiguousarray(whitening.mean, np.float32).tobytes(),
                 np.ascontiguousarray(whitening.projection, np.float32).tobytes(), whitening.photos,
                 whitening.pairs, time.time()))

    def whitening_key(self) -> str | None:
        whitening = self.whitening()
        return None if whitening is None else whitening.key

    def whitening(self) -> StoredWhitening | None:
        """The fitted whitening; None when there is none, or when its bytes are not the ones its key
        names (damaged: index fits it again)."""
        with self._lock:
            row = self._db.execute("SELECT key, mean, projection, photos, pairs FROM whitening WHERE id = 1").fetchone()
        if row is None:
            return None
        key, mean_blob, projection_blob, photos, pairs = row
        dim = self.dim
        if not (dim and isinstance(mean_blob, bytes) and isinstance(projection_blob, bytes)
                and len(mean_blob) == 4 * dim and len(projection_blob) == 4 * dim * dim):
            return self._damaged_whitening()
        mean = np.frombuffer(mean_blob, dtype=np.float32)
        projection = np.frombuffer(projection_blob, dtype=np.float32).reshape(dim, dim)
        if key != whitening_fingerprint(mean, projection) or not isinstance(photos, int) or not isinstance(pairs, int):
            return self._damaged_whitening()
        return StoredWhitening(key, mean, projection, photos, pairs)

    def _damaged_whitening(self) -> None:
        if not self._warned_damaged:
            self._warned_damaged = True
            log.warning("%s: the whitening is damaged; searches use plain similarity until index fits it again",
                        self.path)
        return None

    # -- mending damage (index and vitgallery repair) ---------------------------------------------

    def repair_meta(self, index_file_generation: int | None) -> list[str]:
        """Give the meta values vitgallery reads as numbers a usable value again; says what it did."""
        done = list(self.repaired)
        with self.transaction():
            generation = self.get_meta("generation")
            if generation is None or not generation.isdigit():
                # Past any generation an index file records, so that none passes for this database.
                self.set_meta("generation", str((index_file_generation or 0) + 1))
                done.append(f"reset the generation counter ({generation!r} was not a number)")
            dim = self.get_meta("dim")
            if (dim is None or not dim.isdigit()) and self.get_meta("model_signature") is not None:
                lengths = self._db.execute("SELECT length(vector), COUNT(*) FROM files WHERE vector IS NOT NULL"
                                           " GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()
                if lengths and lengths[0] and lengths[0] % 4 == 0:
                    self.set_meta("dim", str(lengths[0] // 4))
                    done.append(f"set the vector dimension to {lengths[0] // 4}, that of the stored vectors "
                                f"({dim!r} was not a number)")
                else:
                    self._db.execute("DELETE FROM meta WHERE key IN ('dim', 'model_signature')")
                    done.append("forgot the model settings, which were damaged: the next index embeds every photo")
        return done

    def drop_damaged_rows(self, keypoints_readable: Callable[[bytes], bool] | None = None) -> dict[str, int]:
        """Delete the rows vitgallery cannot use: paths leaving the photo folder, damaged vectors (those
        photos are embedded again), damaged teaching views and whitening (learned again), and, when a
        check is given, keypoints it cannot read (those photos are searched, not verified). Returns how
        many of each went. Reads without blocking other writers; writes only when something is damaged."""
        dim = self.dim
        bad_vectors: list[int] = []
        bad_views, bad_keypoints = [], []
        with self._lock:
            # SQLite picks the paths that may leave the folder, so Python looks at a few rows, not every one
            bad_paths = [file_id for file_id, path in self._rows_as_plain_text(_PATHS_THAT_MAY_LEAVE)
                         if not isinstance(path, (str, bytes)) or not path_is_confined(_path_from_db(path))]
            if dim is None:
                rows = self._db.execute("SELECT id, vector FROM files WHERE vector IS NOT NULL")
            else:  # SQLite finds the vectors of the wrong size; the rest are checked a matrix at a time
                bad_vectors = [file_id for (file_id,) in self._db.execute(
                    "SELECT id FROM files WHERE vector IS NOT NULL AND (typeof(vector) != 'blob' OR length(vector) != ?)",
                    (4 * dim,))]
                rows = self._db.execute("SELECT id, vector FROM files WHERE typeof(vector) = 'blob' AND length(vector) = ?",
                                        (4 * dim,))
            while chunk := rows.fetchmany(_DAMAGE_SCAN_CHUNK):
                bad_vectors += _damaged_vector_ids(chunk, dim)
            bad_vectors = sorted(set(bad_vectors) - set(bad_paths))
            bad_views = [file_id for file_id, blob in self._db.execute("SELECT file_id, vectors FROM learning_views")
                         if not _usable_views(blob, dim)]
            bad_whitening = bool(self._db.execute("SELECT COUNT(*) FROM whitening").fetchone()[0]) and \
                self.whitening() is None
            if keypoints_readable is not None:
                bad_keypoints = [file_id for file_id, data in self._db.execute("SELECT file_id, data FROM keypoints")
                                 if not isinstance(data, bytes) or not keypoints_readable(data)]
        dropped = {
            "rows naming files outside the photo folder": len(bad_paths),
            "damaged vectors (their photos are embedded again by the next index)": len(bad_vectors),
            "damaged teaching views": len(bad_views),
            "damaged whitening (fitted again by the next index)": int(bad_whitening),
            "damaged keypoints (those photos are searched without verification)": len(bad_keypoints),
        }
        if not any(dropped.values()):
            return dropped
        with self.transaction():
            self._db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in bad_paths + bad_vectors])
            self._db.executemany("DELETE FROM learning_views WHERE file_id = ?", [(i,) for i in bad_views])
            self._db.executemany("DELETE FROM keypoints WHERE file_id = ?", [(i,) for i in bad_keypoints])
            if bad_whitening:
                self._db.execute("DELETE FROM whitening")
            if bad_paths or bad_vectors or bad_whitening:
                self._bump_generation()
        return dropped

    # -- skipped files -----------------------------------------------------------------------------

    def record_skipped(self, path: str, size: int, mtime_ns: int, reason: str) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO skipped (path, size, mtime_ns, reason, at) VALUES (?, ?, ?, ?, ?)",
                             (_db_path(path), size, mtime_ns, _db_text(reason), time.time()))

    def skipped(self) -> dict[str, SkippedFile]:
        with self._lock:
            rows = self._db.execute("SELECT path, size, mtime_ns, reason FROM skipped").fetchall()
        skipped = [SkippedFile(_path_from_db(r[0]), *r[1:]) for r in rows]
        return {s.path: s for s in sorted(skipped, key=lambda s: s.path)}

    def forget_skipped(self, paths: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM skipped WHERE path = ?", [(_db_path(p),) for p in paths])

    # -- duplicate decisions -----------------------------------------------------------------------

    def save_decision(self, key: str, fingerprints: list[str], paths: list[str], decision: str) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO duplicate_decisions (key, fingerprints, paths, decision, at)"
                             " VALUES (?, ?, ?, ?, ?)",
                             (key, json.dumps(sorted(fingerprints)), json.dumps(paths), decision, time.time()))

    def forget_decisions(self, keys: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM duplicate_decisions WHERE key = ?", [(key,) for key in keys])

    def decisions(self) -> list[DecisionRow]:
        with self._lock:
            rows = self._db.execute("SELECT key, fingerprints, paths, decision, at FROM duplicate_decisions"
                                    " ORDER BY at").fetchall()
        return [DecisionRow(r[0], json.loads(r[1]), json.loads(r[2]), r[3], r[4]) for r in rows]

    def save_keep_choice(self, key: str, paths: list[str] | None) -> None:
        """Remember the photos the user keeps of a group (None: the rule's choice again)."""
        with self.transaction():
            if paths is None:
                self._db.execute("DELETE FROM keep_choices WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO keep_choices (key, paths, at) VALUES (?, ?, ?)",
                                 (key, json.dumps(sorted(paths)), time.time()))

    def forget_keep_choices(self) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM keep_choices")

    def keep_choices(self) -> dict[str, list[str]]:
        """Group key -> the photos the user keeps of that group."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT key, paths FROM keep_choices").fetchall()
            except sqlite3.OperationalError:
                if not self.read_only:
                    raise
                return {}  # an older library read as it is (_READ_AS_IS_FROM_VERSION): no choice made yet
        return {r[0]: json.loads(r[1]) for r in rows}

    # -- the last duplicates scan -----------------------------------------------------------------
    # Its evidence is kept per pair and per photo; deleting a file drops its rows (ON DELETE CASCADE)
    # and a changed file loses them (_replace_extras), so what is stored always matches the content.

    def duplicate_pairs(self) -> np.ndarray:
        """(a, b, whitened, inliers, agreement, likeness, stretch, tilt, padding_a, padding_b) of every
        verified pair, one row each (NaN for no value). Read a few thousand rows at a time: a library
        of 100,000 photos keeps over a million pairs, and freeing them as one list of rows held the
        interpreter for 77 ms, in which the window could not paint."""
        with self._lock:
            rows = self._db.execute("SELECT a, b, whitened, inliers, agreement, likeness, stretch, tilt, padding_a,"
                                    " padding_b FROM duplicate_pairs ORDER BY a, b")
            chunks = [np.zeros((0, len(rows.description)))]
            while chunk := rows.fetchmany(_PAIRS_READ_AT_ONCE):
                chunks.append(np.array(chunk, dtype=np.float64))
        return np.concatenate(chunks)

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
            self.set_duplicate_scan_info(info)

    def set_duplicate_scan_info(self, info: dict) -> None:
        """Record what the last scan was (JSON): duplicate_scan_info reads it."""
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
            self._db.execute("DELETE FROM away_pairs")
            self._db.execute("UPDATE away_files SET scanned = 0, scan_problem = NULL, scan_quality = NULL")
            self._db.execute("DELETE FROM meta WHERE key = 'duplicate_scan'")

    def save_separated_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remember pairs of fingerprints (first < second) as not duplicates of each other."""
        now = time.time()
        with self.transaction():
            self._db.executemany("INSERT OR REPLACE INTO separated_pairs (first, second, at) VALUES (?, ?, ?)",
                                 [(first, second, now) for first, second in pairs])

    def forget_separated_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM separated_pairs WHERE first = ? AND second = ?", list(pairs))

    def separated_pairs(self) -> set[tuple[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT first, second FROM separated_pairs").fetchall()
        return {(r[0], r[1]) for r in rows}

    def separated_pairs_saved(self) -> list[tuple[str, str, float]]:
        """(first, second, when) of every pair: one decision's pairs were saved at one time."""
        with self._lock:
            return [tuple(r) for r in self._db.execute("SELECT first, second, at FROM separated_pairs").fetchall()]

    def paths_by_fingerprint(self, fingerprints: Iterable[str]) -> dict[str, str]:
        """A path (relative to the root) of a file with each of these fingerprints that has one."""
        wanted = list(set(fingerprints))
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                found.update(self._db.execute(
                    f"SELECT fingerprint, path FROM files WHERE fingerprint IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall())
        return found

    # -- names given to automatic groups (core/organise/groups.py) --------------------------------

    def name_group(self, name: str, fingerprints: list[str], replacing: Iterable[int] = ()) -> None:
        """Name the group of these photos; the names of `replacing` (earlier names of it) are dropped."""
        with self.transaction():
            self._db.executemany("DELETE FROM group_names WHERE id = ?", [(i,) for i in replacing])
            self._db.execute("INSERT INTO group_names (name, fingerprints, at) VALUES (?, ?, ?)",
                             (name, json.dumps(sorted(fingerprints)), time.time()))

    def group_names(self) -> list[GroupNameRow]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, fingerprints FROM group_names ORDER BY id").fetchall()
        return [GroupNameRow(r[0], r[1], json.loads(r[2])) for r in rows]

    def forget_group_names(self, ids: Iterable[int]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM group_names WHERE id = ?", [(i,) for i in ids])

    # -- the action log ----------------------------------------------------------------------------

    def log_action(self, kind: str, target: str | None, items: Iterable[ActionItemRow]) -> int:
        """Record an action and what it did to each file, in one transaction; returns its id."""
        with self.transaction():
            action_id = self._db.execute("INSERT INTO actions (kind, target, at) VALUES (?, ?, ?) RETURNING id",
                                         (kind, target, time.time())).fetchone()[0]
            self._db.executemany(
                "INSERT INTO action_items (action_id, source, destination, trash_info, state) VALUES (?, ?, ?, ?, ?)",
                [(action_id, _db_path(i.source), _db_optional_path(i.destination), _db_optional_path(i.trash_info),
                  _db_text(i.state)) for i in items])
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

    def set_made_folders(self, action_id: int, folders: Sequence[str]) -> None:
        """The folders an action is about to make, written before it makes them."""
        with self.transaction():
            self._db.execute("UPDATE actions SET made_folders = ? WHERE id = ?",
                             (json.dumps(list(folders)) if folders else None, action_id))

    def made_folders(self, action_id: int) -> list[str]:
        with self._lock:
            row = self._db.execute("SELECT made_folders FROM actions WHERE id = ?", (action_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else []

    def action_items(self, action_id: int) -> list[ActionItemRow]:
        with self._lock:
            rows = self._db.execute("SELECT source, destination, trash_info, state, id FROM action_items"
                                    " WHERE action_id = ? ORDER BY id", (action_id,)).fetchall()
        return [_action_item_row(r) for r in rows]

    def update_action_item(self, item_id: int, destination: str | None, trash_info: str | None, state: str) -> None:
        """Record where one file of an action goes or went, and how far it got."""
        with self.transaction():
            self._db.execute("UPDATE action_items SET destination = ?, trash_info = ?, state = ? WHERE id = ?",
                             (_db_optional_path(destination), _db_optional_path(trash_info), _db_text(state),
                              item_id))

    def set_action_item_state(self, item_id: int, state: str) -> None:
        with self.transaction():
            self._db.execute("UPDATE action_items SET state = ? WHERE id = ?", (_db_text(state), item_id))

    def later_move_to(self, destination: str, item_id: int) -> int | None:
        """The action that moved a file to `destination` after item `item_id` did and has not put it back
        (that file is its own now); None when no later action did."""
        with self._lock:
            row = self._db.execute("SELECT action_id FROM action_items WHERE destination = ? AND id > ?"
                                   " AND state = 'done' ORDER BY id LIMIT 1", (_db_path(destination), item_id)).fetchone()
        return row[0] if row else None

    def action_items_in_state(self, state: str) -> list[ActionItemRow]:
        """Every logged file in `state`, whatever its action (the log of an interrupted action)."""
        with self._lock:
            rows = self._db.execute("SELECT source, destination, trash_info, state, id FROM action_items"
                                    " WHERE state = ? ORDER BY id", (state,)).fetchall()
        return [_action_item_row(r) for r in rows]

    def mark_undone(self, action_id: int) -> None:
        """Record when an action was undone (its items' states say which files came back)."""
        with self.transaction():
            self._db.execute("UPDATE actions SET undone_at = ? WHERE id = ?", (time.time(), action_id))


def _db_optional_path(path: str | None) -> str | bytes | None:
    return None if path is None else _db_path(path)


def _action_item_row(r: tuple) -> ActionItemRow:
    """An ActionItemRow from `SELECT source, destination, trash_info, state, id`."""
    return ActionItemRow(_path_from_db(r[0]), None if r[1] is None else _path_from_db(r[1]),
                         None if r[2] is None else _path_from_db(r[2]), r[3], r[4])


@dataclass(frozen=True)
class GroupNameRow:
    id: int
    name: str
    fingerprints: list[str]


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

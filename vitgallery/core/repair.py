"""Mending a damaged library (`vitgallery repair`): re-check every row, drop what cannot be read,
rebuild the index file.

SQLite's integrity check passes databases whose rows make no sense to vitgallery: a vector of the wrong
length or not of unit length, a whitening whose bytes are not the ones its key names, a meta value that
is not a number, a path that leaves the photo folder. A database the check fails is first copied row
range by row range into a new file, skipping what cannot be read; the damaged file is kept beside it.
Every photo whose row was dropped is embedded again by the next `vitgallery index`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from vitgallery.core.index import IndexMismatch, header_path, labels_path
from vitgallery.core.keypoints import Keypoints
from vitgallery.core.library import DB_NAME, INDEX_NAME, Library, LibraryError
from vitgallery.core.store import Store, StoreError, disk_nearly_full
from vitgallery.core.vector_store import VectorStoreError, VectorStoreSetting, saved_generation

log = logging.getLogger(__name__)

_SALVAGE_CHUNK_ROWS = 256  # rows copied at a time; a chunk that cannot be read is tried row by row
# SQLite's errors that say nothing of the file's content (permission, busy, locked, read-only, cannot
# open): a database another vitgallery holds, or on a read-only disk, is not damaged, and salvaging it
# would put a copy in place of a healthy file.
_NOT_DAMAGE_CODES = {3, 5, 6, 8, 14}
_INTEGRITY_WAIT_S = 10.0


@dataclass
class RepairReport:
    done: list[str] = field(default_factory=list)  # what was mended, one line each
    photos: int = 0  # photos the library holds afterwards
    damaged_copy: Path | None = None  # where a database that failed SQLite's check was kept


def repair_library(library_dir: Path) -> RepairReport:
    """Re-check the library in `library_dir`, drop what cannot be read and rebuild its index file."""
    library_dir = Path(library_dir).expanduser()
    database = library_dir / DB_NAME
    if not database.is_file():
        raise LibraryError(f"no library in {library_dir}")
    if not (os.access(library_dir, os.W_OK) and os.access(database, os.W_OK)):
        raise LibraryError(f"{library_dir} cannot be written (a read-only disk or folder): repair rewrites the "
                           "library there. Searching works as it is; to repair it, copy the folder somewhere "
                           "writable and pass the copy with --library")
    if disk_nearly_full(library_dir):  # SQLite then fails as if the file were damaged: nothing to salvage
        raise LibraryError(f"the disk holding {library_dir} is full: free some space, then repair again (nothing "
                           "was changed; searching works meanwhile)")
    report = RepairReport()
    problem = _integrity_problem(database)
    if problem is not None:
        report.damaged_copy, copied, lost = _salvage(database)
        if copied:
            salvaged = (f"its readable rows were copied to a new file ({copied:,} rows; {lost:,} ranges of rows could "
                        "not be read)")
        else:  # SQLite refuses every read of some files (one cut short, say): said, not counted as ranges
            salvaged = ("no row of it could be read, so the library starts again empty: the next index embeds "
                        "every photo again")
        report.done.append(f"the database failed SQLite's check ({problem}); {salvaged}; the damaged file is kept "
                           f"as {report.damaged_copy.name}")
    store = Store(database, repair=True)
    try:
        report.done += store.repair_meta(_index_file_generation(library_dir))
        report.done += _repair_vector_store_setting(store)
        dropped = store.drop_damaged_rows(keypoints_readable=_keypoints_readable)
        report.done += [f"dropped {count} {what}" for what, count in dropped.items() if count]
        if report.damaged_copy is not None:
            # Rows the salvage could not read: a photo without its keypoints would be searched unverified
            # for good (the next index finds it unchanged), so it is embedded again with them.
            lost = store.files_without_keypoints()
            store.delete_files(lost)
            if lost:
                report.done.append(f"{len(lost)} photos lost their keypoints with the damaged rows: "
                                   "the next index embeds them again")
        root = store.get_meta("root")
    finally:
        store.close()
    _delete_index_files(library_dir)
    if root is None:
        report.done.append("the database does not name its photo folder: index it again with "
                           f"`vitgallery index FOLDER --library {library_dir}`")
        return report
    library = Library.open(library_dir=library_dir)
    try:
        report.photos = library.status().photos  # builds the index from the database
    finally:
        library.close()
    report.done.append(f"rebuilt the index file ({report.photos} photos)")
    return report


def _integrity_problem(database: Path) -> str | None:
    """SQLite's own verdict on the file, None when it passes; LibraryError where SQLite could not look
    (the file in use by a running vitgallery, or not readable here)."""
    try:
        db = sqlite3.connect(database.absolute().as_uri() + "?mode=ro", uri=True, timeout=_INTEGRITY_WAIT_S)
        try:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a garbled message is damage too
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _NOT_DAMAGE_CODES:
            raise LibraryError(f"{database} could not be checked ({exc}): close vitgallery where it runs on this "
                               "library, then repair again") from exc
        return str(exc) if isinstance(exc, sqlite3.DatabaseError) else "unreadable"
    return None if rows == [("ok",)] else rows[0][0].splitlines()[-1]


def _salvage(database: Path) -> tuple[Path, int, int]:
    """Copy every row that can still be read into a new database with vitgallery's schema, then put it
    in place of the damaged one, which is kept. Returns (the kept copy, rows copied, ranges of rows lost)."""
    fresh = database.with_name(database.name + ".salvaged")
    fresh.unlink(missing_ok=True)
    Store(fresh).close()  # the current schema
    copied = lost = 0
    target = sqlite3.connect(fresh)
    try:
        try:
            source = sqlite3.connect(database.absolute().as_uri() + "?mode=ro", uri=True)
            tables = [name for (name,) in target.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        except (sqlite3.DatabaseError, UnicodeDecodeError):
            source, tables = None, []
            lost += 1
        for table in tables:
            table_copied, table_lost = _copy_rows(source, target, table)
            copied, lost = copied + table_copied, lost + table_lost
        target.commit()
        if source is not None:
            source.close()
    finally:
        target.close()
    kept = database.with_name(f"{database.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(database, kept)
    wal = Path(f"{database}-wal")
    if wal.exists():  # the kept copy keeps its commits: SQLite finds a WAL by the database's name
        os.replace(wal, Path(f"{kept}-wal"))
    Path(f"{database}-shm").unlink(missing_ok=True)
    os.replace(fresh, database)
    return kept, copied, lost


def _copy_rows(source: sqlite3.Connection, target: sqlite3.Connection, table: str) -> tuple[int, int]:
    """Copy the readable rows of one table by rowid range; returns (rows copied, ranges or rows lost)."""
    columns = [row[1] for row in target.execute(f"PRAGMA table_info({table})")]
    try:
        source_columns = {row[1] for row in source.execute(f"PRAGMA table_info({table})")}
        highest = source.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except (sqlite3.DatabaseError, UnicodeDecodeError):
        return 0, 1
    shared = [c for c in columns if c in source_columns]
    if not shared:
        return 0, 0
    select = f"SELECT {', '.join(shared)} FROM {table} WHERE rowid BETWEEN ? AND ?"
    insert = f"INSERT OR IGNORE INTO {table} ({', '.join(shared)}) VALUES ({', '.join('?' * len(shared))})"
    copied = lost = 0
    for start in range(0, highest + 1, _SALVAGE_CHUNK_ROWS):
        try:
            rows = source.execute(select, (start, start + _SALVAGE_CHUNK_ROWS - 1)).fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError):
            rows = []
            for rowid in range(start, start + _SALVAGE_CHUNK_ROWS):
                try:
                    rows += source.execute(select, (rowid, rowid)).fetchall()
                except (sqlite3.DatabaseError, UnicodeDecodeError):
                    lost += 1
        for row in rows:
            try:
                target.execute(insert, row)
                copied += 1
            except sqlite3.DatabaseError:  # a row the schema refuses (a NULL where none may be)
                lost += 1
    return copied, lost


def _index_file_generation(library_dir: Path) -> int | None:
    try:
        return saved_generation(library_dir / INDEX_NAME)  # an hnswlib file or a Qdrant collection's header
    except IndexMismatch:
        return None


def _repair_vector_store_setting(store: Store) -> list[str]:
    """A vector store setting that does not parse goes back to the default (the index is rebuilt anyway)."""
    recorded = store.get_meta("vector_store")
    try:
        if recorded is not None:
            VectorStoreSetting.parse(recorded)
        return []
    except VectorStoreError:
        store.set_meta("vector_store", str(VectorStoreSetting()))
        return [f"reset the vector store to {VectorStoreSetting()} ({recorded!r} was not a vector store)"]


def _keypoints_readable(data: bytes) -> bool:
    try:
        Keypoints.from_bytes(data)
    except (ValueError, TypeError):
        return False
    return True


def _delete_index_files(library_dir: Path) -> None:
    """The index file is rebuilt from the mended database; a stale one must not be caught up."""
    payload = library_dir / INDEX_NAME
    for path in (header_path(payload), payload, labels_path(payload), *library_dir.glob(f".{INDEX_NAME}.*.tmp")):
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc.strerror or exc}") from exc

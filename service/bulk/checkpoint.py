"""The checkpoint of a bulk run: committed part files plus every distinct text's result.

A SQLite file in ``<output>.iccs-partial/`` next to the output. It is the complete text-key ->
result cache of the run, so a text is classified once per file even after the memory cache
evicts it or the run is killed and resumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.bulk.contract import STATUSES, RowResult
from service.bulk.dedupe import ChunkCoding
from service.models.policy import REVIEW

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIX = ".iccs-partial"


class Checkpoint:
    """Durable progress of one output file: committed part files plus the per-text results.

    Lives in ``<output>.iccs-partial/`` next to the output. A part file is renamed into
    place before the transaction that records it commits, so a kill at any point leaves
    either a recorded part or one the resumed run overwrites.
    """

    def __init__(self, folder: Path, fingerprint: str, fresh: bool = False) -> None:
        self.folder = folder
        if folder.exists() and (fresh or self._stored_fingerprint(folder) != fingerprint):
            if folder.exists() and not fresh:
                log.warning(
                    "checkpoint %s is for another input or options; starting over", folder.name
                )
            shutil.rmtree(folder)
        (folder / "parts").mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(folder / "state.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS parts (idx INTEGER PRIMARY KEY, rows INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS texts (
                key TEXT PRIMARY KEY, result TEXT NOT NULL, status TEXT NOT NULL,
                occurrences INTEGER NOT NULL, text TEXT, record_id TEXT, suggestions TEXT,
                non_offence REAL
            );
            """
        )
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(texts)")}
        if "non_offence" not in columns:  # a run checkpointed by an older version, resumed
            self.db.execute("ALTER TABLE texts ADD COLUMN non_offence REAL")
        if self.meta("fingerprint") is None:
            self.set_meta({"fingerprint": fingerprint})

    @staticmethod
    def _stored_fingerprint(folder: Path) -> str | None:
        db_path = folder / "state.sqlite3"
        if not db_path.exists():
            return None
        try:
            con = sqlite3.connect(db_path)
            try:
                row = con.execute("SELECT v FROM meta WHERE k='fingerprint'").fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            return None
        return str(row[0]) if row else None

    def meta(self, key: str) -> str | None:
        """A stored value."""
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, values: dict[str, str]) -> None:
        """Store values (replacing any stored under the same keys)."""
        self.db.executemany(
            "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
            list(values.items()),
        )

    @property
    def rows_done(self) -> int:
        """Rows in committed parts."""
        return int(self.db.execute("SELECT COALESCE(SUM(rows), 0) FROM parts").fetchone()[0])

    @property
    def parts(self) -> list[int]:
        """Indices of committed parts, in order."""
        return [r[0] for r in self.db.execute("SELECT idx FROM parts ORDER BY idx")]

    def counts(self) -> dict[str, int]:
        """Row counts by status of the committed parts."""
        raw = self.meta("counts")
        stored: dict[str, int] = json.loads(raw) if raw else {}
        return {s: int(stored.get(s, 0)) for s in STATUSES}

    def part_path(self, idx: int, suffix: str) -> Path:
        """Where part ``idx`` lives."""
        return self.folder / "parts" / f"{idx:06d}{suffix}"

    def lookup(self, keys: Sequence[str]) -> dict[str, RowResult]:
        """Results already recorded for these keys."""
        out: dict[str, RowResult] = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            marks = ",".join("?" * len(part))
            for key, res in self.db.execute(
                f"SELECT key, result FROM texts WHERE key IN ({marks})", part
            ):
                out[key] = RowResult(*json.loads(res))
        return out

    def commit(
        self,
        idx: int,
        tmp: Path,
        final: Path,
        rows: int,
        coding: ChunkCoding,
        counts: dict[str, int],
    ) -> None:
        """Record a written part and what its texts got, atomically."""
        os.replace(tmp, final)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO texts(key, result, status, occurrences, text, record_id, suggestions,"
                " non_offence) VALUES (?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                [
                    (
                        k,
                        json.dumps(res, ensure_ascii=False),
                        res.status,
                        text if res.status == REVIEW else None,
                        rid if res.status == REVIEW else None,
                        sugg or None,
                        non_offence if res.status == REVIEW else None,
                    )
                    for k, (res, text, rid, sugg, non_offence) in coding.new.items()
                ],
            )
            # Occurrences matter only for what goes to review (queued with its count).
            db.executemany(
                "UPDATE texts SET occurrences = occurrences + ? WHERE key = ?",
                [(n, k) for k, n in coding.key_counts.items() if coding.status(k) == REVIEW],
            )
            db.execute("INSERT OR REPLACE INTO parts(idx, rows) VALUES (?, ?)", (idx, rows))
            self.set_meta({"counts": json.dumps(counts)})
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def distinct_texts(self) -> int:
        """Distinct texts seen so far."""
        return int(self.db.execute("SELECT COUNT(*) FROM texts").fetchone()[0])

    def review_rows(self, size: int = 1000) -> Iterator[list[tuple[Any, ...]]]:
        """Texts that went to review, with their occurrence counts, in batches."""
        cur = self.db.execute(
            "SELECT key, text, record_id, occurrences, suggestions, result, non_offence FROM texts "
            "WHERE status = ? ORDER BY rowid",
            (REVIEW,),
        )
        while rows := cur.fetchmany(size):
            yield rows

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def remove(self) -> None:
        """Delete the checkpoint after a successful run."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def checkpoint_folder(output: Path) -> Path:
    """The checkpoint folder of an output file."""
    return output.with_name(output.name + CHECKPOINT_SUFFIX)


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Size plus hashes of the first and last MiB: cheap, and changes when the file does."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(size - (1 << 20))
            h.update(f.read(1 << 20))
    return {"size": size, "sha256_ends": h.hexdigest()}

"""The model registry: one immutable folder per version, plus a promotion log.

Layout of ``<registry>/<version>/``: ``manifest.json`` (version, ICCS version, git sha,
training-data hash, config, metrics, thresholds, calibration, and the SHA-256 of every other
file of the entry), ``MODEL_CARD.md``, ``metrics.json``, ``report.md``, ``config.yaml``
(tracked in git) and the files built by training (``encoder/``, ``head.npz``, ``head.json``,
``abbreviations.csv``, ``vocabulary.json``, ``glossary.csv``; git-ignored). Nothing in an entry
is a pickle, and nothing is loaded before every file matches its digest: whoever can write one
file of an entry can change what it answers, never run code, and a changed file stops it loading.

``promotions.jsonl`` records every promotion; the last line is the active version, and rollback
appends the previous one, so the history itself is never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.errors import ModelIntegrityError, ModelNotFound, RegistryError

MANIFEST = "manifest.json"
PROMOTIONS = "promotions.jsonl"
# 2: arrays and JSON with a SHA-256 per file (manifest "files"); 1 (no "entry_format"): a
# pickled head.joblib and no digests, which this service does not load.
ENTRY_FORMAT = 2
# Written into an entry after registration by `iccs evaluate` and never read by the loader.
UNHASHED = ("evaluation",)


def entry_files(folder: Path) -> list[str]:
    """Every file of an entry but the manifest and ``UNHASHED``, as sorted POSIX paths."""
    out: list[str] = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in UNHASHED]
        out.extend((rel / name).as_posix() for name in files)
    return sorted(f for f in out if f != MANIFEST)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: Path) -> dict[str, str]:
    """``{path: sha256}`` of :func:`entry_files`: what a manifest's ``files`` lists."""
    return {name: sha256_of(folder / name) for name in entry_files(folder)}


class Registry:
    """Versioned models under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        """Registered versions, oldest first (version ids sort by time)."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).is_file())

    def path(self, version: str) -> Path:
        """Folder of a registered version."""
        p = self.root / version
        if not (p / MANIFEST).is_file() or os.sep in version or version.startswith("."):
            raise ModelNotFound(f"No registered model '{version}'.", version=version)
        return p

    def manifest(self, version: str) -> dict[str, Any]:
        """Parsed manifest of a version."""
        data: dict[str, Any] = json.loads((self.path(version) / MANIFEST).read_text("utf-8"))
        return data

    def problem(self, version: str) -> str | None:
        """Why ``version`` cannot be served from this folder (an entry from before digests,
        or files not built here), or None. Checks presence only; :meth:`verify` hashes."""
        manifest = self.manifest(version)
        listed = manifest.get("files")
        if manifest.get("entry_format") != ENTRY_FORMAT or not isinstance(listed, dict):
            return (
                "it was registered before entries listed a SHA-256 per file "
                "(its head is a pickle, which this service does not load)"
            )
        missing = sorted(set(listed) - set(entry_files(self.path(version))))
        if missing:
            return f"{len(missing)} of its files are not here (built by `iccs train`): {missing[0]}"
        return None

    def is_complete(self, version: str) -> bool:
        """True when every file the manifest lists is present (not just the manifest)."""
        return self.problem(version) is None

    def verify(self, version: str) -> Path:
        """The entry's folder, once every file matches the SHA-256 its manifest lists and no
        file is missing or extra; raise :class:`ModelIntegrityError` otherwise."""
        folder = self.path(version)
        manifest = self.manifest(version)
        listed = manifest.get("files")
        if manifest.get("entry_format") != ENTRY_FORMAT or not isinstance(listed, dict):
            raise ModelIntegrityError(
                f"Model '{version}' predates SHA-256-checked entries; rebuild it with "
                "`iccs train` (or `iccs models ensure` for the default model).",
                version=version,
                reason="old_format",
            )
        present = set(entry_files(folder))
        for reason, names in (
            ("missing", sorted(set(listed) - present)),
            ("extra", sorted(present - set(listed))),
        ):
            if names:
                raise ModelIntegrityError(
                    f"Model '{version}' has {reason} files ({', '.join(names[:3])}); it is "
                    "not loaded.",
                    version=version,
                    reason=reason,
                    files=names[:20],
                )
        changed = [name for name in sorted(listed) if sha256_of(folder / name) != listed[name]]
        if changed:
            raise ModelIntegrityError(
                f"Model '{version}' has files that differ from the SHA-256 in its manifest "
                f"({', '.join(changed[:3])}); it is not loaded.",
                version=version,
                reason="changed",
                files=changed[:20],
            )
        return folder

    def history(self) -> list[dict[str, Any]]:
        """Promotion events, oldest first."""
        log = self.root / PROMOTIONS
        if not log.exists():
            return []
        lines = log.read_text("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def active(self) -> str | None:
        """The promoted version, or None."""
        events = self.history()
        return str(events[-1]["version"]) if events else None

    def resolve(self, version: str | None = None) -> str:
        """``version`` if given, else the promoted one; raise if there is none."""
        chosen = version or self.active()
        if not chosen:
            raise ModelNotFound("No model is promoted; run `iccs train` or `make model`.")
        self.path(chosen)
        return chosen

    def promote(self, version: str, action: str = "promote") -> None:
        """Make ``version`` the active model (once its files pass :meth:`verify`)."""
        self.verify(version)
        self.root.mkdir(parents=True, exist_ok=True)
        event = {"version": version, "action": action, "at": datetime.now(UTC).isoformat()}
        with (self.root / PROMOTIONS).open("a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def rollback(self) -> str:
        """Re-promote the version that was active before the current one."""
        events = self.history()
        current = self.active()
        for event in reversed(events):
            if event["version"] != current:
                self.promote(event["version"], action="rollback")
                return str(event["version"])
        raise RegistryError("Nothing to roll back to: only one version was ever promoted.")

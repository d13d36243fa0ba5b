"""The model registry: one immutable folder per version, plus a promotion log.

Layout of ``<registry>/<version>/``: ``manifest.json`` (version, ICCS version, git sha,
training-data hash, config, metrics, thresholds, calibration), ``MODEL_CARD.md``,
``metrics.json``, ``report.md`` (tracked in git) and the binaries built by training
(``encoder/``, ``head.joblib``, ``abbreviations.csv``; git-ignored). ``promotions.jsonl``
records every promotion; the last line is the active version, and rollback appends the
previous one, so the history itself is never rewritten.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.errors import ModelNotFound, RegistryError

MANIFEST = "manifest.json"
PROMOTIONS = "promotions.jsonl"
REQUIRED_FILES = ("manifest.json", "head.joblib", "abbreviations.csv", "encoder/encoder.json")


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

    def is_complete(self, version: str) -> bool:
        """True when the binaries built by training are present (not just the manifest)."""
        p = self.path(version)
        return all((p / f).exists() for f in REQUIRED_FILES)

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
        """Make ``version`` the active model."""
        if not self.is_complete(version):
            raise RegistryError(
                f"Model '{version}' lacks its binaries; rebuild it with `iccs train`.",
                version=version,
            )
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

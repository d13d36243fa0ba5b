"""``iccs review ...``: export reviewed decisions, manage decision memory and double review.

The ``review`` group is wired into the ``iccs`` command line by ``service.cli``; it works on
its own too (tests drive it with click's CliRunner).
"""

from __future__ import annotations

import getpass
import json
import re
from datetime import timedelta
from pathlib import Path

import click

from service.cli_support import ICCSGroup
from service.config import Settings
from service.db import utcnow
from service.normalize import dedupe_key
from service.review.export import DEFAULT_EXPORT, export_reviewed
from service.review.store import ReviewStore


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def open_store(settings: Settings) -> ReviewStore:
    """The review store of these settings, migrated to the newest schema."""
    if not settings.database_url:
        settings.ensure_state_dir()
    return ReviewStore.from_url(
        settings.resolved_database_url(),
        lease_seconds=settings.review_lease_seconds,
        memory_min_agreeing=settings.memory_min_agreeing,
    )


@click.group(cls=ICCSGroup)
def review() -> None:
    """Reviewed decisions: export them for training, manage decision memory."""


@review.command("export")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_EXPORT,
    show_default=True,
    help="CSV to write (replaced); `iccs train` reads labelled_data/review/*.csv.",
)
@click.option(
    "--language", default="en", show_default=True, help="Language tag of the reviewed texts."
)
@click.pass_context
def export_cmd(ctx: click.Context, output: Path, language: str) -> None:
    """Write reviewed decisions as labelled corpus rows (source `review`)."""
    store = open_store(_settings(ctx))
    try:
        result = export_reviewed(store, output, language=language)
    finally:
        store.engine.dispose()
    note = f" ({result.superseded} older decisions superseded)" if result.superseded else ""
    click.echo(f"wrote {result.rows} reviewed rows to {result.path}{note}")


@review.group()
def memory() -> None:
    """Decision memory: reviewers' codes reused for identical later texts."""


@memory.command("list")
@click.option("--all", "include_retired", is_flag=True, help="Include retired entries.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.pass_context
def memory_list(ctx: click.Context, include_retired: bool, limit: int) -> None:
    """Entries, newest first: text key, code, item, who decided and when, how many reviewers
    agree, and whether it applies (active), waits for agreement, or was retired.

    Texts are not printed (they can name people); look an item up by id instead.
    """
    store = open_store(_settings(ctx))
    try:
        entries = store.memory_entries(include_retired=include_retired, limit=limit)
        agreement = store.memory_agreement([e.text_key for e in entries])
        for e in entries:
            agreeing, active = agreement.get(e.text_key, (0, False))
            if e.retired_at:
                state = f"retired by {e.retired_by}"
            else:
                state = (
                    "active" if active else f"waiting ({agreeing} of {store.memory_min_agreeing})"
                )
            when = e.decided_at.strftime("%Y-%m-%d %H:%M")
            click.echo(
                f"{e.text_key}\t{e.code}\titem {e.item_id}\t{e.decided_by}\t{when}\t"
                f"{agreeing} agreeing\t{state}"
            )
    finally:
        store.engine.dispose()


@memory.command("retire")
@click.option(
    "--text",
    "text_",
    default=None,
    help="The record text (any spelling variant "
    "that differs only in case, punctuation or spacing).",
)
@click.option("--key", "text_key", default=None, help="The entry's text key.")
@click.option(
    "--item", "item_id", type=int, default=None, help="A review item the entry came from."
)
@click.option(
    "--by",
    "actor",
    default=None,
    help="Name recorded in the audit trail (default: the operating-system user).",
)
@click.pass_context
def memory_retire(
    ctx: click.Context,
    text_: str | None,
    text_key: str | None,
    item_id: int | None,
    actor: str | None,
) -> None:
    """Stop coding identical texts with a reviewer's earlier decision (admin)."""
    given = [v for v in (text_, text_key, item_id) if v is not None]
    if len(given) != 1:
        raise click.UsageError("Give exactly one of --text, --key or --item.")
    who = actor or f"cli:{getpass.getuser()}"
    store = open_store(_settings(ctx))
    try:
        entry = store.memory_retire(
            who, text_key=dedupe_key(text_) if text_ is not None else text_key, item_id=item_id
        )
    finally:
        store.engine.dispose()
    click.echo(f"retired {entry.text_key} (was {entry.code})")


@review.command("double-review")
@click.option("--batch", default=None, help="Batch whose open items to flag.")
@click.option("--item", "item_ids", type=int, multiple=True, help="Item id (repeatable).")
@click.option(
    "--share",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    show_default=True,
    help="Share of the batch's open items (every n-th).",
)
@click.option("--by", "actor", default=None, help="Name recorded in the audit trail.")
@click.pass_context
def double_review(
    ctx: click.Context,
    batch: str | None,
    item_ids: tuple[int, ...],
    share: float,
    actor: str | None,
) -> None:
    """Ask two independent reviewers for items, to measure inter-reviewer agreement."""
    store = open_store(_settings(ctx))
    try:
        n = store.flag_double_review(
            actor or f"cli:{getpass.getuser()}", list(item_ids) or None, batch, share
        )
    finally:
        store.engine.dispose()
    click.echo(f"flagged {n} items for double review")


@review.command("stats")
@click.pass_context
def stats_cmd(ctx: click.Context) -> None:
    """Progress summary as JSON: remaining, decided, auto-coded, reviewed today, agreement."""
    store = open_store(_settings(ctx))
    try:
        s = store.stats()
    finally:
        store.engine.dispose()
    out = {
        "remaining": s.remaining,
        "remaining_occurrences": s.remaining_occurrences,
        "decided": s.decided,
        "auto_coded": s.auto_coded,
        "reviewed_today": s.reviewed_today,
        "by_status": s.by_status,
        "pending_by_section": s.pending_by_section,
        "model_agreement": s.model_agreement,
        "inter_reviewer": {
            "pairs": s.inter_reviewer.pairs,
            "agreeing": s.inter_reviewer.agreeing,
            "rate": s.inter_reviewer.rate,
            "kappa": s.inter_reviewer.kappa,
        },
    }
    click.echo(json.dumps(out, indent=2))


_AGE = re.compile(r"^\s*(\d+)\s*([hdw]?)\s*$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks", "": "days"}


def parse_age(value: str) -> timedelta:
    """``90d``, ``12h``, ``2w`` (or a bare number of days) as a duration."""
    m = _AGE.match(value.lower())
    if m is None:
        raise click.BadParameter("give an age such as 90d, 12h or 2w.", param_hint="--older-than")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


@click.command("purge")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Age cut-off, e.g. 90d, 12h, 2w (default: ICCS_RETENTION_DAYS).",
)
@click.pass_context
def purge(ctx: click.Context, older_than: str | None) -> None:
    """Remove offence texts older than the cut-off: from decided review items, their notes,
    decision memory and finished jobs' files (plus orphaned uploads). Counts, codes and audit
    events stay."""
    settings = _settings(ctx)
    if older_than is not None:
        age = parse_age(older_than)
    elif settings.retention_days:
        age = timedelta(days=settings.retention_days)
    else:
        raise click.UsageError("Give --older-than (e.g. 90d) or set ICCS_RETENTION_DAYS.")
    store = open_store(settings)
    try:
        counts = store.purge_texts(utcnow() - age, actor=f"purge:{getpass.getuser()}")
    finally:
        store.engine.dispose()
    from service.bulk.jobs import purge_jobs

    folders = purge_jobs(settings, age)
    click.echo(
        f"Removed texts older than {age} from {counts.items} review item(s) and "
        f"{counts.memory_entries} decision-memory entries; removed {folders} job folder(s)."
    )

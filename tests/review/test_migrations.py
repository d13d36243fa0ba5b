"""Alembic migrations: they build exactly the schema of service.db, and run down again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from service.db import Base, make_engine
from service.review.store import ItemFilter, ReviewStore, _alembic_config, init_db


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def test_migrations_match_models(engine: Engine) -> None:
    assert _diff(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables and "alembic_version" in tables


def test_init_db_is_idempotent_and_keeps_data(tmp_path: Path, make_request) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    store = ReviewStore.from_url(url)
    (item_id,) = store.enqueue([make_request("kept")])
    store.engine.dispose()
    again = ReviewStore.from_url(url)  # a restart
    assert again.get(item_id).text == "kept"
    again.engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    engine = init_db(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    init_db(engine)
    assert _diff(engine) == []
    engine.dispose()


def test_from_url_without_migrating_sees_no_schema(tmp_path: Path) -> None:
    store = ReviewStore.from_url(f"sqlite:///{tmp_path / 'empty.sqlite3'}", migrate=False)
    assert store.ping() is False
    store.engine.dispose()


def test_upgrade_merges_duplicate_open_items_made_before_the_unique_index(tmp_path: Path) -> None:
    # Revision 0003 adds a unique index over open items; duplicates left by the old race
    # (issue 16 L2) are merged first, so the upgrade of a live database cannot fail on them.
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002_job_leases")
        for batch in ("b", "b", None, None, "other"):
            conn.execute(
                text(
                    "INSERT INTO review_items (text, text_key, origin, batch, occurrences, "
                    "status, suggestions, created_at, reviews_required) VALUES "
                    "('t', 'k', 'api', :b, 2, 'pending', '[]', CURRENT_TIMESTAMP, 1)"
                ),
                {"b": batch},
            )
    init_db(engine)
    store = ReviewStore(engine)
    open_items = store.list_items(ItemFilter(status="pending")).items
    assert sorted((i.batch or "", i.occurrences) for i in open_items) == [
        ("", 4),
        ("b", 4),
        ("other", 2),
    ]
    merged = [store.get(i) for i in (2, 4)]
    assert {(m.status, m.decision) for m in merged} == {("decided", "merged")}
    assert store.history(2)[-1].note == "duplicate open item; merged into 1"
    engine.dispose()


def test_upgrade_to_0007_gives_open_items_their_own_value(tmp_path: Path) -> None:
    # Revision 0007 adds review_items.priority (queue order "value"); items already open get
    # the part that needs no model, uncertainty x records; closed items none.
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0006_review_created_by")
        for key, status, conf, occ in [
            ("a", "pending", 0.25, 8),
            ("b", "disputed", None, 3),
            ("c", "decided", 0.5, 2),
        ]:
            conn.execute(
                text(
                    "INSERT INTO review_items (text, text_key, origin, occurrences, status, "
                    "suggestions, top_confidence, created_at, reviews_required) VALUES "
                    "('t', :k, 'api', :n, :s, '[]', :c, CURRENT_TIMESTAMP, 1)"
                ),
                {"k": key, "n": occ, "s": status, "c": conf},
            )
    init_db(engine)
    store = ReviewStore(engine)
    assert [store.get(i).priority for i in (1, 2, 3)] == [6.0, 3.0, None]
    assert [i.id for i in store.list_items(order="value").items] == [1, 2, 3]
    engine.dispose()


def test_0011_adds_the_non_offence_probability_and_downgrades_keeping_items(
    tmp_path: Path,
) -> None:
    # Items queued before revision 0011 have no probability; a downgrade drops the column only.
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0010_review_table_precision")
        conn.execute(
            text(
                "INSERT INTO review_items (text, text_key, origin, occurrences, status, "
                "suggestions, top_confidence, created_at, reviews_required) VALUES "
                "('lost wallet', 'k', 'api', 1, 'pending', '[]', 0.3, CURRENT_TIMESTAMP, 1)"
            )
        )
    init_db(engine)
    assert "non_offence_probability" in {
        c["name"] for c in inspect(engine).get_columns("review_items")
    }
    store = ReviewStore(engine)
    assert store.get(1).non_offence_probability is None
    with engine.begin() as conn:
        conn.execute(text("UPDATE review_items SET non_offence_probability = 0.62"))
        command.downgrade(_alembic_config(conn), "0010_review_table_precision")
    assert "non_offence_probability" not in {
        c["name"] for c in inspect(engine).get_columns("review_items")
    }
    with engine.connect() as conn:
        assert conn.execute(text("SELECT text FROM review_items")).scalar_one() == "lost wallet"
    init_db(engine)
    assert _diff(engine) == [] and ReviewStore(engine).get(1).non_offence_probability is None
    engine.dispose()

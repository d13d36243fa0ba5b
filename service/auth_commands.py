"""``iccs keys``: create, list and revoke API keys (a lazy command of ``service.cli``)."""

from __future__ import annotations

import click

from service.auth import ROLES, KeyStore
from service.cli_support import ICCSGroup
from service.config import Settings, get_settings
from service.db import session_factory


def _store(ctx: click.Context) -> KeyStore:
    from service.review.store import init_db

    settings = ctx.obj if isinstance(ctx.obj, Settings) else get_settings()
    if not settings.database_url:
        settings.ensure_state_dir()
    return KeyStore(session_factory(init_db(settings.resolved_database_url())))


@click.group(cls=ICCSGroup)
def keys() -> None:
    """Manage API keys (stored hashed; a key is shown once, when created)."""


@keys.command("create")
@click.option("--name", required=True, help="Who or what uses the key (unique, kept in audits).")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do.")
@click.pass_context
def create(ctx: click.Context, name: str, role: str) -> None:
    """Create a key; the key itself is printed alone on the last line."""
    key = _store(ctx).create(name, role)
    click.echo(f"Created {role} key '{name}'. Store it now: it cannot be shown again.")
    click.echo(key)


@keys.command("list")
@click.pass_context
def list_keys(ctx: click.Context) -> None:
    """Every key with its role and state (never the secret)."""
    for k in _store(ctx).list():
        state = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(f"{k.name}\t{k.role}\t{k.created_at:%Y-%m-%d %H:%M}\t{state}")


@keys.command("revoke")
@click.argument("name")
@click.pass_context
def revoke(ctx: click.Context, name: str) -> None:
    """Revoke the active key called NAME; requests with it get 401 from then on."""
    _store(ctx).revoke(name)
    click.echo(f"Revoked key '{name}'.")

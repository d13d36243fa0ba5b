"""What every ``iccs`` command group shares: typed core errors become one-line messages."""

from __future__ import annotations

import click

from service.errors import ICCSError


class ICCSGroup(click.Group):
    """A click group that turns :class:`ICCSError` into ``code: message`` and exit status 1.

    Used by the top-level ``iccs`` group and by the groups that live in their packages, so a
    group behaves the same whether it is run through ``iccs`` or on its own (tests).
    """

    def invoke(self, ctx: click.Context) -> object:
        """Run the subcommand; report a typed error as ``code: message``."""
        try:
            return super().invoke(ctx)
        except ICCSError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from exc

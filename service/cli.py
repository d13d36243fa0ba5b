"""The ``iccs`` command line. Commands call the core directly, never the HTTP API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from service.cli_support import ICCSGroup
from service.config import Settings
from service.taxonomy import LEVEL_NAMES, load_taxonomy

# Commands that live with their packages, imported only when used (keeps `iccs --help` fast).
_LAZY = {
    "keys": "service.auth_commands:keys",
    "review": "service.review.commands:review",
    "classify-file": "service.bulk.commands:classify_file",
    "crosswalk": "service.bulk.commands:crosswalk",
    "worker": "service.bulk.worker:worker",
    "purge": "service.review.commands:purge",
}


class _Group(ICCSGroup):
    """Loads package commands lazily; typed core errors become one-line messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _LAZY:
            module, attr = _LAZY[name].split(":")
            command: click.Command = getattr(__import__(module, fromlist=[attr]), attr)
            return command
        return super().get_command(ctx, name)


@click.group(cls=_Group)
@click.version_option(package_name="iccs-coder")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Code offence records to ICCS v1.0: train, serve, classify files, review."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # Migrations run at every start; their INFO lines are noise for a CLI user.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = settings


# --- taxonomy -----------------------------------------------------------------------------


@main.group()
def taxonomy() -> None:
    """Browse the ICCS v1.0 tree."""


@taxonomy.command("show")
@click.argument("code")
def taxonomy_show(code: str) -> None:
    """Path from the section down to CODE, with titles, and its subcategories."""
    tax = load_taxonomy()
    cat = tax.get(code)
    for depth, c in enumerate(tax.path(code)):
        click.echo(f"{'  ' * depth}{c}  {tax.title(c)}")
    click.echo(f"level: {cat.level} ({cat.level_name}); leaf: {'yes' if cat.is_leaf else 'no'}")
    for child in cat.children:
        click.echo(f"  - {child}  {tax.title(child)}")


@taxonomy.command("search")
@click.argument("query")
@click.option("--level", type=click.IntRange(1, 4), default=None, help="Only this level.")
def taxonomy_search(query: str, level: int | None) -> None:
    """Categories whose title matches every word of QUERY."""
    for cat in load_taxonomy().search(query, level=level):
        click.echo(f"{cat.code}\t{LEVEL_NAMES[cat.level]}\t{cat.title}")


# --- models -------------------------------------------------------------------------------


@main.group()
def models() -> None:
    """List, promote and roll back registered models."""


def _registry(settings: Settings):  # type: ignore[no-untyped-def]
    from service.models.registry import Registry

    return Registry(settings.registry_dir)


@models.command("list")
@click.pass_obj
def models_list(settings: Settings) -> None:
    """Registered versions; the active one is marked with *."""
    reg = _registry(settings)
    active = reg.active()
    for v in reg.versions():
        m = reg.manifest(v)
        flag = "*" if v == active else " "
        built = "" if reg.is_complete(v) else "  (binaries not built here)"
        summary = m.get("metrics_summary", {})
        click.echo(f"{flag} {v}  {m.get('created_at', '')}  {json.dumps(summary)}{built}")


@models.command("promote")
@click.argument("version")
@click.pass_obj
def models_promote(settings: Settings, version: str) -> None:
    """Make VERSION the model the service and the bulk tool load."""
    _registry(settings).promote(version)
    click.echo(f"promoted {version}")


@models.command("rollback")
@click.pass_obj
def models_rollback(settings: Settings) -> None:
    """Re-promote the previously active version."""
    click.echo(f"rolled back to {_registry(settings).rollback()}")


@models.command("ensure")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.pass_obj
def models_ensure(settings: Settings, config_path: Path | None) -> None:
    """Build and promote the default model unless a promoted, built one exists."""
    reg = _registry(settings)
    active = reg.active()
    if active and reg.is_complete(active):
        click.echo(f"model {active} is promoted and built; nothing to do")
        return
    if active:
        click.echo(f"model {active} is promoted but cannot be served: {reg.problem(active)}")
    click.echo("building and promoting the default model (`iccs train`)")
    from training.pipeline import train_and_register

    version = train_and_register(settings, config_path=config_path, promote=True)
    click.echo(f"built and promoted {version}")


# --- corpus, training, evaluation ---------------------------------------------------------


@main.group()
def corpus() -> None:
    """The labelled corpus."""


@corpus.command("stats")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="text")
@click.pass_obj
def corpus_stats(settings: Settings, fmt: str) -> None:
    """Totals of the assembled labelled corpus."""
    from training.corpus.assemble import assemble
    from training.corpus.assemble import corpus_stats as stats_of

    stats = stats_of(assemble(settings.data_dir).rows)
    if fmt == "json":
        click.echo(json.dumps(stats, indent=2))
    else:
        for key, value in stats.items():
            click.echo(f"{key}: {value}")


@corpus.command("validate")
@click.pass_obj
def corpus_validate(settings: Settings) -> None:
    """Check codes, conflicts and split groups; exit 1 on any problem."""
    from training.corpus.assemble import assemble

    result = assemble(settings.data_dir)
    for problem in result.problems:
        click.echo(problem, err=True)
    click.echo(f"{len(result.rows)} rows, {len(result.problems)} problems")
    if result.problems:
        sys.exit(1)


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML training config (default: training/configs/default.yaml).",
)
@click.option("--quick", is_flag=True, help="Tiny config for tests: trains in seconds.")
@click.option("--promote/--no-promote", default=False, help="Promote the new version.")
@click.pass_obj
def train(settings: Settings, config_path: Path | None, quick: bool, promote: bool) -> None:
    """Build a model from the labelled corpus and register it as a new version."""
    from training.pipeline import train_and_register

    version = train_and_register(settings, config_path=config_path, quick=quick, promote=promote)
    click.echo(version)


@main.command()
@click.option("--model", "version", default=None, help="Registry version (default: promoted).")
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Labelled CSV (text,iccs_code); default: leave-one-source-out on the corpus.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for metrics.json, report.md and plots (default: the registry entry).",
)
@click.option(
    "--grouped-folds",
    is_flag=True,
    help="Three folds of whole jurisdictions instead of one per source (faster).",
)
@click.option(
    "--simulate-review",
    is_flag=True,
    help="Replay each national list coded whole by the model and an oracle reviewer, "
    "per queue order (review_simulation.json/.png/.md).",
)
@click.pass_obj
def evaluate(
    settings: Settings,
    version: str | None,
    input_path: Path | None,
    output: Path | None,
    grouped_folds: bool,
    simulate_review: bool,
) -> None:
    """Metrics of a registered model on a labelled file, or the full evaluation suite."""
    from training.evaluate import evaluate_command

    result = evaluate_command(settings, version, input_path, output, grouped_folds, simulate_review)
    click.echo(json.dumps(result, indent=2))


# --- serving ------------------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Bind address (default from settings).")
@click.option("--port", type=int, default=None, help="Port (default from settings).")
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None) -> None:
    """Run the HTTP API."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    from service.main import create_app

    # Concurrent requests already keep every core busy; BLAS worker threads on top of them
    # spin while they wait for work and took a third of the CPU under load (measured with
    # bench/api_bench.py: 81 -> 116 requests/s at concurrency 8 with one BLAS thread).
    threadpool_limits(limits=1)

    settings = settings.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    # The app writes its own one-line JSON access log; uvicorn's would say it twice.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()

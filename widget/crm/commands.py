"""Command-line access to the CRM directory, for automated set-ups (registered on the app's CLI by widget/cli.py):

    flask --app widget import-records contacts.csv --module Contacts [--map email="E-Mail-Adresse" ...]
    flask --app widget api-token "Zoho CRM webhooks"

`import-records` follows the rules of the import page (see csv_import.py): it prints the counts, then each
skipped row and each warning with its line number; it exits with 1 when any row was skipped (the good rows
are imported all the same) or when the file cannot be imported at all. `api-token` prints the new token alone
on standard output (for `TOKEN=$(flask --app widget api-token NAME)`), and what it is on standard error.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from .directory import MODULES


def _migrate() -> None:
    from flask import current_app

    from ..migrating import upgrade_database

    upgrade_database(current_app)


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, column = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected FIELD=COLUMN, got {value!r}", param_hint="--map")
        pairs[key.strip()] = column.strip()
    return pairs


@click.command("import-records")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--module", required=True, type=click.Choice(MODULES, case_sensitive=False),
              help="The CRM module of the file's records.")
@click.option("--map", "mappings", multiple=True, metavar="FIELD=COLUMN",
              help="Map a column to a field (crm_id, name, first_name, last_name, email, secondary_email, account_id, "
                   "account_name, contact_id, contact_name); an empty COLUMN maps none. Repeatable. Recognised "
                   "headers (a Zoho CRM export's) need none.")
@with_appcontext
def import_records_command(file: Path, module: str, mappings: tuple[str, ...]) -> None:
    """Import CRM records of one module from a CSV file (same rules as the import page)."""
    from ..extensions import db
    from . import csv_import

    pairs = _pairs(mappings)
    try:
        parsed = csv_import.read_csv(file.read_bytes())
    except csv_import.CsvProblem as problem:
        raise click.ClickException(f"{file}: {problem}") from None
    try:
        mapping = csv_import.mapping_by_names(module, parsed.headers, pairs)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--map") from None
    errors = csv_import.check_mapping(module, mapping, parsed.headers)
    if errors:
        lines = [f"  {csv_import.FIELDS_BY_KEY[key].label if key in csv_import.FIELDS_BY_KEY else key}: {message}"
                 for key, message in errors.items()]
        raise click.ClickException(
            f"{file}: the columns cannot be imported as they are; map them with --map FIELD=COLUMN.\n"
            + "\n".join(lines) + f"\n  The file's columns: {', '.join(parsed.headers)}")
    _migrate()
    plan = csv_import.plan_import(parsed, module, mapping)
    try:
        result = csv_import.run_import(plan).upsert
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    skipped = len(plan.errors)
    click.echo(f"{module} from {file.name}: {result.created} created, {result.updated} updated, "
               f"{result.unchanged} unchanged, {skipped} {'row' if skipped == 1 else 'rows'} skipped.")
    for problem in plan.errors:
        click.echo(f"{problem} (skipped)")
    for problem in plan.warnings:
        click.echo(f"{problem} (warning)")
    if result.relink:
        click.echo("New addresses are in the directory: every account re-links its past mail on its next sync.")
    if skipped:
        raise click.exceptions.Exit(1)


@click.command("api-token")
@click.argument("name")
@with_appcontext
def api_token_command(name: str) -> None:
    """Issue a bearer token for the CRM's webhooks (POST /api/crm/records); it is printed only this once."""
    from ..extensions import db
    from . import tokens

    try:
        tokens.check_name(name)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None
    _migrate()
    row, token = tokens.issue(name)
    db.session.commit()
    click.echo(f"Issued the API token {row.name!r}. It is shown only this once: give it to the CRM now "
               f"(Authorization: Bearer TOKEN). Revoke it on /admin/crm/tokens.", err=True)
    click.echo(token)

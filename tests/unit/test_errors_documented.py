"""Every error code lives in one place, has one HTTP status, and is in the README's table.

The codes are read from the code itself (the classes in service/errors.py, the HTTP handlers'
codes), so an error added anywhere is caught here, like the settings in
test_settings_documented.py.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import pytest

import service
from service import errors
from service.api.errors import _HTTP_CODES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Error bodies built by hand (handlers of errors FastAPI and Starlette raise): code, then status.
_LITERAL = re.compile(r"error_(?:response|body)\(\s*\"([a-z_]+)\",.*?\b([1-5]\d\d)\b", re.S)


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


def _error_classes() -> set[type[errors.ICCSError]]:
    for info in pkgutil.walk_packages(service.__path__, "service."):
        if ".migrations" not in info.name:
            importlib.import_module(info.name)
    return _all_subclasses(errors.ICCSError)


def _statuses_by_code() -> dict[str, set[int]]:
    """Every code the service can answer with, and the statuses it comes with."""
    out: dict[str, set[int]] = defaultdict(set)
    for cls in _error_classes():
        out[cls.code].add(cls.http_status)
    for status, code in _HTTP_CODES.items():
        out[code].add(status)
    for path in (ROOT / "service").rglob("*.py"):
        for code, status in _LITERAL.findall(path.read_text("utf-8")):
            out[code].add(int(status))
    return dict(out)


def _readme_table() -> dict[str, set[int]]:
    """Code -> statuses of the rows it appears in, from the README's error table."""
    section = README.read_text("utf-8").split("### Errors", 1)[1]
    table: dict[str, set[int]] = defaultdict(set)
    for status, cell in re.findall(r"^\| (\d{3}) \| (.*) \|$", section, re.M):
        for code in re.findall(r"`([a-z_]+)`", cell):
            table[code].add(int(status))
    return dict(table)


def test_every_error_class_lives_in_service_errors() -> None:
    elsewhere = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _error_classes()
        if cls.__module__ != errors.__name__
    )
    assert not elsewhere, f"error classes outside service/errors.py: {elsewhere}"


def test_every_error_class_has_its_own_code() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    by_code: dict[str, list[str]] = defaultdict(list)
    for cls in classes:
        if issubclass(cls, errors.ICCSError):
            by_code[cls.code].append(cls.__name__)
    assert {code: names for code, names in by_code.items() if len(names) > 1} == {}


def test_one_http_status_per_error_code() -> None:
    assert {c: s for c, s in _statuses_by_code().items() if len(s) > 1} == {}


def test_every_error_code_is_in_the_readme_table_with_its_status() -> None:
    table = _readme_table()
    wrong = {
        code: (sorted(statuses), sorted(table.get(code, ())))
        for code, statuses in _statuses_by_code().items()
        if code != errors.ICCSError.code and table.get(code) != statuses
    }
    assert not wrong, f"code: (status, README rows); fix the README's error table: {wrong}"


@pytest.mark.parametrize("component", ["model", "review store", "key store", "job queue"])
def test_not_ready_names_what_is_not_ready(component: str) -> None:
    exc = errors.ServiceNotReady(component)
    assert exc.http_status == 503
    assert exc.context == {"component": component.replace(" ", "_")}
    assert component in exc.message

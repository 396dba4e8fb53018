"""categories_import: a list of categories from CSV or a JSON list of synsets, checked whole
and written in one transaction.

CSV columns (a header row names them, in any order): ``name`` (required), ``wnid``,
``definition``, ``parent_wnid`` or ``parent`` (a slug), ``target_images``, ``slug``. JSON: a list
of objects with the same keys (``synset`` and ``gloss`` are accepted for ``wnid`` and
``definition``). A row whose WordNet id (or else slug) is already a category updates it.
Parents may come after their children, or already exist. Every bad row is reported with its
line (CSV, the header being line 1) or item number (JSON, from 1), and then nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from labeling.models import Category
from labeling.wordnet_ids import slug_of

MAX_BYTES = 2 * 2**20
MAX_ROWS = 10_000
COLUMNS = ("wnid", "name", "definition", "parent_wnid", "parent", "target_images", "slug")
ALIASES = {"synset": "wnid", "gloss": "definition"}


@dataclass(frozen=True)
class RowError:
    line: str  # "line 3" or "item 2", or "file"
    message: str

    def __str__(self) -> str:
        return f"{self.line}: {self.message}"


@dataclass
class CategoryImportReport:
    """What an import wrote (slugs), or with errors why it wrote nothing."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        return f"{len(self.created)} categories created, {len(self.updated)} updated"


@dataclass
class _Row:
    line: str
    fields: dict[str, str]
    parent_key: str = ""  # a wnid or a slug, "" for none
    target: Category | None = None


def _csv_rows(text: str) -> tuple[list[tuple[str, dict[str, str]]], list[RowError]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    try:
        header = [(name or "").strip().lower() for name in reader.fieldnames or []]
        reader.fieldnames = [ALIASES.get(name, name) for name in header]
        if "name" not in reader.fieldnames:
            return [], [RowError("line 1", f"the header needs a name column; it has {header}")]
        for record in reader:
            values = {k: (v or "").strip() for k, v in record.items() if k in COLUMNS}
            if any(values.values()):
                rows.append((f"line {reader.line_num}", values))
    except csv.Error as error:
        # the reader counts the lines it finished: the bad one is the next
        return [], [RowError(f"line {reader.line_num + 1}", f"not valid CSV ({error})")]
    return rows, []


def _json_rows(text: str) -> tuple[list[tuple[str, dict[str, str]]], list[RowError]]:
    try:
        document = json.loads(text)
    except ValueError as error:
        return [], [RowError("file", f"not valid JSON ({error})")]
    except RecursionError:  # the decoder recurses once per level of nesting
        return [], [RowError("file", "not valid JSON (nested too deeply)")]
    if not isinstance(document, list):
        return [], [RowError("file", "give a JSON list of objects, one per category")]
    rows, errors = [], []
    for number, item in enumerate(document, 1):
        if not isinstance(item, dict):
            errors.append(RowError(f"item {number}", "is not an object"))
            continue
        values = {ALIASES.get(k, k): v for k, v in item.items() if ALIASES.get(k, k) in COLUMNS}
        nested = [k for k, v in values.items() if isinstance(v, (dict, list))]
        if nested:
            kind = "an object" if isinstance(values[nested[0]], dict) else "a list"
            errors.append(
                RowError(f"item {number}", f"{nested[0]} is {kind}; give text or a number")
            )
            continue
        texts = {k: "" if v is None else str(v).strip() for k, v in values.items()}
        if any("\x00" in text for text in texts.values()):  # "\u0000" in the JSON
            errors.append(RowError(f"item {number}", "holds a NUL character"))
            continue
        rows.append((f"item {number}", texts))
    return rows, errors


def _parse(data: bytes, name: str) -> tuple[list[tuple[str, dict[str, str]]], list[RowError]]:
    if len(data) > MAX_BYTES:
        return [], [RowError("file", f"{len(data):,} bytes; at most {MAX_BYTES:,}, split it")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [RowError("file", "not UTF-8 text")]
    if "\x00" in text:  # no database text column takes it
        line = text[: text.index("\x00")].count("\n") + 1
        return [], [RowError(f"line {line}", "holds a NUL character")]
    is_json = name.lower().endswith(".json") or text.lstrip()[:1] in ("[", "{")
    rows, errors = _json_rows(text) if is_json else _csv_rows(text)
    if not rows and not errors:
        errors = [RowError("file", "no categories in it")]
    if len(rows) > MAX_ROWS:
        errors = [RowError("file", f"{len(rows):,} rows; at most {MAX_ROWS:,}, split it")]
    return rows, errors


def _int_or_error(text: str) -> int | str:
    try:
        value = int(text)
    except ValueError:
        return f"target_images {text[:20]!r} is not a whole number"
    return value if value >= 1 else "target_images must be at least 1"


class _Known:
    """The existing categories a file refers to, fetched in two queries."""

    def __init__(self, rows: list[tuple[str, dict[str, str]]]) -> None:
        keys = {v for _, r in rows for k, v in r.items() if k in ("wnid", "parent_wnid") and v}
        slugs = {r.get("slug") or slug_of(r.get("name", "")) for _, r in rows}
        slugs |= {r["parent"] for _, r in rows if r.get("parent")}
        self.by_wnid = {c.wnid: c for c in Category.objects.filter(wnid__in=keys)}
        self.by_slug = {c.slug: c for c in Category.objects.filter(slug__in=slugs)}


def _target(values: dict[str, str], known: _Known) -> tuple[Category | None, list[str]]:
    """The category a row creates or updates, with the row's values set, and what is wrong
    with the row (no category when it can't be told which one it means)."""
    wnid = values.get("wnid") or None
    slug = values.get("slug") or slug_of(values.get("name", ""))
    category = known.by_wnid.get(wnid) if wnid else None
    if category is None:
        category = known.by_slug.get(slug)
        if category is not None and wnid and category.wnid and category.wnid != wnid:
            return None, [
                f"slug {slug!r} is already category {category.name!r} ({category.wnid}); "
                "give this row a slug column of its own"
            ]
    if category is None:
        category = Category(slug=slug)
    elif values.get("slug"):
        category.slug = slug
    category.wnid = wnid or category.wnid
    for name in ("name", "definition"):
        if values.get(name):
            setattr(category, name, values[name])
    problems = []
    if values.get("target_images"):
        target = _int_or_error(values["target_images"])
        if isinstance(target, str):
            problems.append(target)
        else:
            category.target_images = target
    return category, problems


def _row_problems(category: Category) -> list[str]:
    try:
        category.full_clean(exclude=["parent"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        return [f"{k}: {' '.join(v)}" for k, v in error.message_dict.items()]
    return []


def _check_rows(
    parsed: list[tuple[str, dict[str, str]]], known: _Known, errors: list[RowError]
) -> list[_Row]:
    rows: list[_Row] = []
    seen: dict[str, str] = {}  # "wnid n…" or "slug x" -> the line that has it
    for line, values in parsed:
        if not values.get("name"):
            errors.append(RowError(line, "needs a name"))
            continue
        target, problems = _target(values, known)
        if target is None:
            errors.extend(RowError(line, problem) for problem in problems)
            continue
        problems += _row_problems(target)
        for key in (f"wnid {target.wnid}" if target.wnid else "", f"slug {target.slug}"):
            if key and key in seen:
                problems.append(f"{key} is also on {seen[key]}")
            elif key:
                seen[key] = line
        owner = known.by_slug.get(target.slug)
        if owner is not None and owner is not target and owner.pk != target.pk:
            problems.append(f"slug {target.slug!r} is already category {owner.name!r}")
        errors.extend(RowError(line, problem) for problem in problems)
        parent_key = values.get("parent_wnid") or values.get("parent") or ""
        rows.append(_Row(line, values, parent_key, target))
    return rows


def _parents(rows: list[_Row], known: _Known, errors: list[RowError]) -> dict[int, Any]:
    """Row index -> its parent: a row index (int) or an existing Category, or None."""
    in_file: dict[str, int] = {}
    for index, row in enumerate(rows):
        assert row.target is not None
        if row.target.wnid:
            in_file[row.target.wnid] = index
        in_file[row.target.slug] = index
    parents: dict[int, Any] = {}
    for index, row in enumerate(rows):
        key = row.parent_key
        if not key:
            parents[index] = None
        elif in_file.get(key) == index or key in (row.target.wnid, row.target.slug):
            errors.append(RowError(row.line, "a category can't be its own parent"))
        elif key in in_file:
            parents[index] = in_file[key]
        elif key in known.by_wnid or key in known.by_slug:
            parents[index] = known.by_wnid.get(key) or known.by_slug[key]
        else:
            errors.append(
                RowError(row.line, f"parent {key!r} is neither in the file nor a category")
            )
    return parents


def _line_number(error: RowError) -> int:
    number = error.line.rpartition(" ")[2]
    return int(number) if number.isdigit() else 0


class _Loop(Exception):
    pass


def _loop_errors(rows: list[_Row]) -> list[RowError]:
    """Rows whose chain of parents never reaches a root, in the tree as written (so a row that
    moves a category under one of its own descendants is caught too). Each category is walked
    once: a 10,000-deep chain costs 10,000 steps, not 50 million."""
    tree = dict(Category.objects.values_list("pk", "parent_id"))
    rooted: set[int] = set()
    looped: set[int] = set()

    def reaches_root(start: int) -> bool:
        path: set[int] = set()
        node: int | None = start
        while node is not None and node not in rooted and node not in looped:
            if node in path:
                break
            path.add(node)
            node = tree.get(node)
        reached = node is None or node in rooted
        (rooted if reached else looped).update(path)
        return reached

    errors = []
    for row in rows:
        assert row.target is not None and row.target.pk is not None
        if not reaches_root(row.target.pk):
            errors.append(RowError(row.line, "its parents make a loop"))
    return errors


def _write(rows: list[_Row], parents: dict[int, Any], report: CategoryImportReport) -> None:
    """Save every row, then link parents (a row without a parent keeps the one it had)."""
    for row in rows:
        assert row.target is not None
        (report.updated if row.target.pk else report.created).append(row.target.slug)
        row.target.save()
    for index, row in enumerate(rows):
        parent = parents[index]
        if parent is None:
            continue
        parent_pk = rows[parent].target.pk if isinstance(parent, int) else parent.pk
        Category.objects.filter(pk=row.target.pk).update(parent_id=parent_pk)
    loops = _loop_errors(rows)
    if loops:
        report.errors = loops
        raise _Loop


def categories_import(*, data: bytes, name: str = "categories.csv") -> CategoryImportReport:
    """Create or update the categories listed in `data` (CSV or JSON, see the module), all in
    one transaction; with any bad row nothing is written and every problem is reported."""
    report = CategoryImportReport()
    parsed, report.errors = _parse(data, name)
    if report.errors:
        return report
    known = _Known(parsed)
    rows = _check_rows(parsed, known, report.errors)
    parents = _parents(rows, known, report.errors)
    if report.errors:
        report.errors.sort(key=_line_number)
        return report
    try:
        with transaction.atomic():
            _write(rows, parents, report)
    except _Loop:
        return CategoryImportReport(errors=report.errors)
    return report

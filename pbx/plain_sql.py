"""Plain SQL for hot paths (the listener's batches, the wallboard, queue figures): statements
whose value lists vary, without the ORM's query compiling (a few hundred microseconds a query,
most of what a small batch cost the listener).

Values are converted as the ORM converts them (the backend's and the fields' converters), so a
row read here is the row a queryset would give: aware datetimes and booleans on SQLite too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection
from django.db.models import Field, Model


@contextmanager
def pipelined() -> Iterator[None]:
    """On PostgreSQL, the statements within are sent without waiting for each one's result
    (psycopg's pipeline mode): a read waits for what it needs, an error is raised at the latest
    when the block ends. The listener's write of 20 PBXes is ~25 statements: each round trip
    let the other threads take the GIL, and the write's wall time was several times its CPU.
    Elsewhere (SQLite: no round trips), nothing changes."""
    if connection.vendor != "postgresql":
        yield
        return
    import psycopg

    connection.ensure_connection()
    if not psycopg.Pipeline.is_supported():  # libpq older than 14
        yield
        return
    # What the pipeline raises as it ends is psycopg's: raised as Django's, as a statement's is.
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def first_value(cursor: Any) -> Any:
    """The first column of the statement's first row (None without one), from a cursor of
    psycopg's own: its rows are typed optional, Django's are not."""
    row = cursor.fetchone()
    return None if row is None else row[0]


def marks(values: Sequence) -> str:
    """`%s, %s, …`: one placeholder per value, for `IN (…)`."""
    return ", ".join(["%s"] * len(values))


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    field = cast(Field, model._meta.get_field(name))
    return connection.ops.quote_name(str(field.column))


def _converters(model: type[Model], fields: Sequence[Field]) -> list[tuple[int, Any, list]]:
    found = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + field.get_db_converters(
            connection
        )
        if converters:
            found.append((index, expression, converters))
    return found


_converted: dict[tuple, Callable[[Sequence], list]] = {}


def converted(model: type[Model], names: Sequence[str]) -> Callable[[Sequence], list]:
    """A function that converts one row of these fields' columns as the ORM would."""
    key = (model, tuple(names), connection.vendor)
    found = _converted.get(key)
    if found is None:
        found = _converted[key] = _converting(model, names)
    return found


def _converting(model: type[Model], names: Sequence[str]) -> Callable[[Sequence], list]:
    fields = [model._meta.get_field(name) for name in names]
    converters = _converters(model, fields)  # type: ignore[arg-type]

    def convert(row: Sequence) -> list:
        values = list(row)
        for index, expression, functions in converters:
            for function in functions:
                values[index] = function(values[index], expression, connection)
        return values

    return convert


def rows_where(model: type[Model], equal: dict[str, Any], within: dict[str, Iterable]) -> list:
    """The model's rows whose `equal` fields have these values and whose `within` fields are
    in these collections (none if one is empty), as model instances, in one statement."""
    return rows_where_any(model, [(equal, within)])


Where = tuple[Mapping[str, Any], Mapping[str, Iterable]]


def rows_where_any(model: type[Model], alternatives: Iterable[Where]) -> list:
    """The model's rows that match any of these (`equal`, `within`) pairs, each as rows_where
    reads it, in one statement. The listener's rows of several PBXes are read with one pair per
    PBX: the same names on every PBX would otherwise match each other's rows."""
    return read_together([select_where_any(model, alternatives)])[0]


@dataclass(frozen=True)
class Select:
    """One SELECT for `read_together`: its SQL, its parameters, and what makes its result of
    the rows fetched."""

    sql: str
    params: Sequence[Any]
    result: Callable[[list], Any] = list


_NOTHING = Select("", ())


def select_where_any(model: type[Model], alternatives: Iterable[Where]) -> Select:
    """rows_where_any's statement, to read with others (`read_together`)."""
    conditions: list[str] = []
    params: list[Any] = []
    for equal, within in alternatives:
        lists = {name: list(values) for name, values in within.items()}
        if any(not values for values in lists.values()):
            continue
        terms = [f"{column(model, name)} = %s" for name in equal]
        terms += [f"{column(model, name)} IN ({marks(values)})" for name, values in lists.items()]
        conditions.append(f"({' AND '.join(terms)})")
        params += [*equal.values(), *(value for values in lists.values() for value in values)]
    if not conditions:
        return _NOTHING
    fields = list(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in fields)
    convert = converted(model, [field.name for field in fields])
    attnames = [field.attname for field in fields]

    def instances(rows: list) -> list:
        return [model.from_db(connection.alias, attnames, convert(row)) for row in rows]

    sql = f"SELECT {columns} FROM {table(model)} WHERE {' OR '.join(conditions)}"
    return Select(sql, params, instances)


def read_together(selects: Sequence[Select]) -> list[Any]:
    """Each statement's result, in order. All are sent before the first result is read: within
    `pipelined()` that is one round trip for all of them, not one each (the listener's write
    waited for each of its reads, and for the GIL again after each)."""
    cursors = [connection.cursor() if select.sql else None for select in selects]
    try:
        for cursor, select in zip(cursors, selects, strict=True):
            if cursor is not None:
                cursor.execute(select.sql, select.params)
        return [
            select.result(cursor.fetchall() if cursor is not None else [])
            for cursor, select in zip(cursors, selects, strict=True)
        ]
    finally:
        for cursor in cursors:
            if cursor is not None:
                cursor.close()


def insert_rows(
    model: type[Model],
    rows: Sequence[Model],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
) -> None:
    """Inserts these instances (every concrete field but an automatic primary key) in one
    statement. With `conflict` (the fields of a unique constraint) a clashing row is left as
    it is, or, with `update`, has these fields replaced by the new row's (an upsert)."""
    if not rows:
        return
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key or not _auto(field)]
    names = ", ".join(connection.ops.quote_name(str(field.column)) for field in fields)
    one = f"({marks(fields)})"
    sql = f"INSERT INTO {table(model)} ({names}) VALUES {', '.join([one] * len(rows))}"
    if conflict:
        keys = ", ".join(column(model, name) for name in conflict)
        if update:
            assignments = ", ".join(
                f"{column(model, name)} = EXCLUDED.{column(model, name)}" for name in update
            )
            sql += f" ON CONFLICT ({keys}) DO UPDATE SET {assignments}"
        else:
            sql += f" ON CONFLICT ({keys}) DO NOTHING"
    params = [
        field.get_db_prep_save(getattr(row, field.attname), connection)
        for row in rows
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _auto(field: Field) -> bool:
    return field.get_internal_type() in {"AutoField", "BigAutoField", "SmallAutoField"}


def delete_rows(model: type[Model], primary_keys: Iterable) -> None:
    """Deletes the rows of these primary keys in one statement: for tables that nothing
    references and no signal watches (the live state's), where the ORM's delete would only
    add its collecting."""
    keys = sorted(primary_keys)
    if not keys:
        return
    pk = connection.ops.quote_name(str(model._meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table(model)} WHERE {pk} IN ({marks(keys)})", keys)

"""Column types that behave the same on SQLite and PostgreSQL: exact decimals, UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


class ExactDecimal(sa.TypeDecorator[Decimal]):
    """A Decimal kept digit for digit: NUMERIC on PostgreSQL, text on SQLite (no float detour)."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(value)


class _NaiveText(sa.types.UserDefinedType[str]):
    """SQLite's DATETIME column, its text written and read by UTCDateTime itself (faster)."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "DATETIME"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out; SQLite keeps it as naive UTC text.

    The SQLite text is SQLAlchemy's own DATETIME format ("2026-11-20 12:00:00.000000"), so it
    sorts by time and other tools read it as usual.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return _NaiveText()
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is not UTC:  # most stamps are UTC already: a history page's are
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"naive datetime {value.isoformat()}: the store needs aware ones")
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def as_utc(value: Any) -> datetime:
    """A stored time stamp as an aware UTC datetime: SQLite's naive UTC text (parsed as UTC in
    one step), or the driver's datetime. Also for readers that skip the column type."""
    if value.__class__ is str:
        return datetime.fromisoformat(value + "+00:00")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return value.astimezone(UTC)  # type: ignore[no-any-return]

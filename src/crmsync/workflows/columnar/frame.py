"""The frame a columnar evaluation reads: the store's columns, plus the derived fields the rules
compare, computed as `derived.derive_from` computes them (same float operations, same order)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import polars as pl

from crmsync.model import FIELDS
from crmsync.workflows.columnar.cel import BOOL, DOUBLE, INT, STRING

DAY = 86400.0
# The derived fields a frame can carry, and the store columns each is made from.
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "days_since_activity": ("last_activity_at", "created_at"),
    "days_in_stage": ("s_stage_entered_at",),
    "next_step_age_days": ("next_step", "s_next_step_changed_at"),
    "close_date_push_count": ("s_close_date_push_count",),
    "close_date_slip_days": ("s_close_date_slip_days",),
    "stage_regressions": ("s_stage_regressions",),
    "late_days": ("close_date",),
    "amount_text": ("amount",),
}
_DERIVED_TYPES = {
    "days_since_activity": DOUBLE,
    "days_in_stage": DOUBLE,
    "next_step_age_days": DOUBLE,
    "close_date_push_count": INT,
    "close_date_slip_days": INT,
    "stage_regressions": INT,
}
_FIELD_TYPES = {"str": STRING, "bool": BOOL, "decimal": DOUBLE, "float": DOUBLE}


def cel_types() -> dict[str, str]:
    """Each variable a compiled condition may read, with its CEL type (as `to_cel` gives it)."""
    types = {name: _FIELD_TYPES[f.type] for name, f in FIELDS.items() if f.type in _FIELD_TYPES}
    types.update(_DERIVED_TYPES)
    types["key"] = STRING
    return types


def store_columns(names: Iterable[str]) -> list[str]:
    """The store columns to read for these frame columns (derived ones from their sources)."""
    out: list[str] = []
    for name in names:
        out.extend(DERIVED_FROM.get(name, (name,)))
    return sorted(set(out) - set(DERIVED_FROM))


def _age(now: datetime, column: pl.Expr) -> pl.Expr:
    """Days from a stamp to `now`, never below zero: (now - then).total_seconds() / DAY."""
    seconds = (pl.lit(now).dt.cast_time_unit("us") - column).dt.total_microseconds().cast(
        pl.Float64
    ) / 1_000_000.0
    days = seconds / DAY
    return (
        pl.when(days > 0.0).then(days).otherwise(pl.when(days.is_null()).then(None).otherwise(0.0))
    )


def prepare(frame: pl.DataFrame, names: Iterable[str], now: datetime, today: date) -> pl.DataFrame:
    """Add the derived `names` (and `amount` as a double, its text kept as `amount_text`)."""
    wanted = set(names)
    exprs: list[pl.Expr] = []
    if "amount" in frame.columns:
        exprs.append(pl.col("amount").alias("amount_text"))
        exprs.append(pl.col("amount").cast(pl.Float64, strict=False).alias("amount"))
    if "days_since_activity" in wanted:
        stamp = pl.coalesce(pl.col("last_activity_at"), pl.col("created_at"))
        exprs.append(_age(now, stamp).alias("days_since_activity"))
    if "days_in_stage" in wanted:
        exprs.append(_age(now, pl.col("s_stage_entered_at")).alias("days_in_stage"))
    if "next_step_age_days" in wanted:
        filled = pl.col("next_step").is_not_null() & (pl.col("next_step") != "")
        age = _age(now, pl.col("s_next_step_changed_at"))
        exprs.append(pl.when(filled).then(age).otherwise(None).alias("next_step_age_days"))
    for name in ("close_date_push_count", "close_date_slip_days", "stage_regressions"):
        if name in wanted:
            exprs.append(pl.col(f"s_{name}").alias(name))
    if "late_days" in wanted:
        late = (pl.lit(today) - pl.col("close_date")).dt.total_days()
        exprs.append(late.alias("late_days"))
    return frame.with_columns(exprs) if exprs else frame

"""The sales filters task templates add to Jinja: ``money``, ``days`` and ``date``.

``money`` gives ``12,500.00`` (thousands separators, cents, rounded half up; amounts below
1e30), ``days`` gives ``23 days`` or ``1 day``, ``date`` gives ``2026-11-20`` (or
``date("%d %b %Y")``). Each renders None as an empty string, so ``{{ amount|money or "no
amount" }}`` gives a fallback, and fails with a one-line reason for a value it cannot show.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import jinja2

__all__ = ["FILTERS", "MONEY_DIGITS", "date_filter", "days", "money"]


def _check_defined(value: Any) -> None:
    """Raise Jinja's own "'x' is undefined" for a missing name passed to a filter."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError here


def _number(value: Any, name: str) -> Decimal:
    """A Decimal from a number (or numeric text), for exact rounding in filters."""
    if isinstance(value, bool):
        raise TypeError(f"{name} needs a number, got {value}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except (InvalidOperation, ValueError):  # ValueError: an int too long to print
            pass
    raise TypeError(f"{name} needs a number, got {_short(value)}")


def _short(value: Any) -> str:
    """A value for a message: its repr, at most 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


MONEY_DIGITS = 30  # digits before the point `money` shows (1e26 is fine, 1e30 is not)


def money(value: Any) -> str:
    """An amount with thousands separators and cents, rounded half up: ``12,500.00``."""
    _check_defined(value)
    if value is None:
        return ""
    amount = _number(value, "money")
    if not amount.is_finite():
        raise ValueError(f"money needs a finite number, got {_short(value)}")
    if amount.adjusted() >= MONEY_DIGITS:
        raise ValueError(f"money needs an amount below 1e{MONEY_DIGITS}, got {amount:.3e}")
    exact = Context(prec=MONEY_DIGITS + 4)  # the default 28 digits cannot quantize 1e26
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP, context=exact):,.2f}"


def days(value: Any) -> str:
    """A number of days, rounded half up: ``1 day``, ``23 days`` (a timedelta works too)."""
    _check_defined(value)
    if value is None:
        return ""
    if isinstance(value, timedelta):
        value = value.total_seconds() / 86400
    if value.__class__ is float and 0.0 <= value < 1e9:  # ulp far below the 1e-6 margin
        whole, fraction = divmod(value, 1.0)
        if abs(fraction - 0.5) > 1e-6:  # clear of a tie: no need for exact decimal rounding
            n = int(whole) + (fraction > 0.5)
            return f"{n} day" if n == 1 else f"{n} days"
    number = _number(value, "days")
    if not number.is_finite() or number.adjusted() >= MONEY_DIGITS:
        raise ValueError(f"days needs a finite number below 1e{MONEY_DIGITS}, got {_short(value)}")
    whole = int(number.to_integral_value(rounding=ROUND_HALF_UP))
    return f"{whole} day" if abs(whole) == 1 else f"{whole} days"


def date_filter(value: Any, format: str = "%Y-%m-%d") -> str:
    """A date or timestamp (or ISO text) as ``2026-11-20``; timestamps in their own timezone."""
    _check_defined(value)
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"date needs a date, got {value!r}") from None
    if not isinstance(value, date):
        raise TypeError(f"date needs a date, got {value!r}")
    return value.strftime(format)


FILTERS = {"money": money, "days": days, "date": date_filter}

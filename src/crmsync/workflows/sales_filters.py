"""The one number formatter of rep-facing text: the sales filters task templates add to Jinja
(``money``, ``days``, ``date``), which the reasons of built-in rules use too.

``money`` gives ``USD 12,500`` or ``USD 12,500.50``: the deal's ISO 4217 currency code, when it
has one, before the amount with thousands separators, rounded half up to cents, the cents left
out when they are zero (amounts below 1e30). ``days`` gives ``23 days`` or ``1 day``: whole days
are *completed* days (the floor of the elapsed days, `whole_days`), the same number the built-in
rules compare with their limits, so a reason never says ``14 days (limit 14)``. ``date`` gives
``2026-11-20`` (or ``date("%d %b %Y")``). Each renders None as an empty string, so ``{{
amount|money or "no amount" }}`` gives a fallback, and fails with a one-line reason for a value
it cannot show.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import jinja2

__all__ = [
    "FILTERS",
    "MONEY_DIGITS",
    "currency_code",
    "date_filter",
    "days",
    "money",
    "ordinal",
    "whole_days",
]


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


def money(value: Any, currency: Any = None) -> str:
    """An amount with thousands separators, rounded half up to cents, the cents left out when
    zero, led by its ISO 4217 currency code when given: ``USD 12,500``, ``EUR 99.50``."""
    _check_defined(value)
    if value is None:
        return ""
    amount = _number(value, "money")
    if not amount.is_finite():
        raise ValueError(f"money needs a finite number, got {_short(value)}")
    if amount.adjusted() >= MONEY_DIGITS:
        raise ValueError(f"money needs an amount below 1e{MONEY_DIGITS}, got {amount:.3e}")
    exact = Context(prec=MONEY_DIGITS + 4)  # the default 28 digits cannot quantize 1e26
    text = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP, context=exact):,.2f}"
    if text.endswith(".00"):
        text = text[:-3]
    if text == "-0":
        text = "0"
    code = currency_code(currency)
    return f"{code} {text}" if code else text


def currency_code(value: Any) -> str:
    """An ISO 4217 code as written before amounts (``USD``), or "" for anything else: a CRM
    field holding something other than three letters is not shown."""
    if isinstance(value, str):
        code = value.strip().upper()
        if len(code) == 3 and code.isascii() and code.isalpha():
            return code
    return ""


def whole_days(value: float) -> int:
    """Completed days: the floor of a number of elapsed days (``14.9`` is 14 days). The one
    rounding of days in reasons, templates and the built-in rules' comparisons."""
    return math.floor(value)


def days(value: Any) -> str:
    """A number of completed days (the floor, `whole_days`): ``1 day``, ``23 days`` (a
    timedelta works too)."""
    _check_defined(value)
    if value is None:
        return ""
    if isinstance(value, timedelta):
        value = value.total_seconds() / 86400
    if value.__class__ is float and -1e9 < value < 1e9:  # floor of a float is exact
        n = math.floor(value)
        return f"{n} day" if abs(n) == 1 else f"{n} days"
    number = _number(value, "days")
    if not number.is_finite() or number.adjusted() >= MONEY_DIGITS:
        raise ValueError(f"days needs a finite number below 1e{MONEY_DIGITS}, got {_short(value)}")
    whole = int(number.to_integral_value(rounding=ROUND_FLOOR))
    return f"{whole} day" if abs(whole) == 1 else f"{whole} days"


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``11th``, ``80th``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


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

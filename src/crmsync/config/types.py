"""Value types of the config file (paths, URLs, crons, durations), each with its own check."""

from __future__ import annotations

import math
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    SecretStr,
    ValidationInfo,
)

from crmsync.schedule import cron_trigger

# --- value types --------------------------------------------------------------------------------


def _file_context(info: ValidationInfo) -> tuple[Path | None, bool]:
    """The folder relative paths start from, and whether files must exist (only when loaded)."""
    ctx = info.context or {}
    base = ctx.get("base_dir")
    return base, bool(ctx.get("check_files", base is not None))


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    base, check = _file_context(info)
    path = value.expanduser()
    if base is not None:
        path = Path(os.path.normpath(Path(base) / path))
    if check and not path.is_file():
        where = "" if value.is_absolute() else " (relative to the config file's folder)"
        raise ValueError(f"file not found: {value}{where}")
    return path


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^/\s:]+(:\d+)?(/\S*)?", value):
        raise ValueError(f"must be an http(s):// URL, not {value!r}")
    return value.rstrip("/")


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _non_empty_secret(value: SecretStr) -> SecretStr:
    _non_empty(value.get_secret_value())
    return value


def _name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
        raise ValueError(f"must be lowercase letters, digits and '-' (like sf-prod), not {value!r}")
    return value


def _cron(value: str) -> str:
    """Five fields or an @-shortcut, as the scheduler will read them (crmsync.schedule)."""
    shortcut = r"@(yearly|annually|monthly|weekly|daily|hourly)"
    fields = value.split()
    if re.fullmatch(shortcut, value.strip()) or (
        len(fields) == 5 and all(re.fullmatch(r"[0-9A-Za-z*/,?#-]+", f) for f in fields)
    ):
        schedule = " ".join(fields) if len(fields) == 5 else value.strip()
        try:
            cron_trigger(schedule, "UTC")
        except ValueError as e:
            raise ValueError(f"{schedule!r} is not a valid cron schedule: {e}") from None
        return schedule
    raise ValueError(
        "must be a cron schedule with 5 fields (minute hour day month weekday), "
        f"like '*/15 * * * *', not {value!r}"
    )


_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_DURATION = timedelta(days=366)  # `reconcile_every` and the like: at most a year


def _number(value: Any) -> Any:
    """YAML's `true` is not a number (pydantic would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


def _duration(value: Any) -> Any:
    """`90s`, `15m`, `24h`, `7d`, `1h30m` or a number of seconds, as a timedelta."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value}")
        seconds: float = value
    elif isinstance(value, str) and re.fullmatch(r"(\s*\d+(\.\d+)?\s*[wdhms])+\s*", value):
        seconds = sum(
            float(n) * _DURATION_UNITS[u]
            for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([wdhms])", value)
        )
    else:
        raise ValueError(f"must be a duration like 30m, 24h or 7d, not {value!r}")
    if seconds != seconds or seconds <= 0:  # NaN compares unequal to itself
        raise ValueError("must be longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"must be at most {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def api_version(value: Any) -> Any:
    """`59.0` written without quotes reads as a number; the API wants the text `59.0`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{float(value):.1f}"
    if isinstance(value, str) and not re.fullmatch(r"\d{2,3}\.0", value):
        raise ValueError(f"must be a Salesforce API version like '59.0', not {value!r}")
    return value


ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
Url = Annotated[str, AfterValidator(_url)]
Text = Annotated[str, AfterValidator(_non_empty)]
Secret = Annotated[SecretStr, AfterValidator(_non_empty_secret)]
Name = Annotated[str, AfterValidator(_name)]
Cron = Annotated[str, AfterValidator(_cron)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Number = Annotated[float, BeforeValidator(_number)]  # finite: FileModel refuses .inf and .nan
Whole = Annotated[int, BeforeValidator(_number)]
ApiVersion = Annotated[str, BeforeValidator(api_version)]

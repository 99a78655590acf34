"""`${VAR}` references and `*_file` secrets in YAML data, with errors at the value's position.

What came from the environment or a secret file is a `Substituted` string, so that error
messages can leave it out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from crmsync.files.marks import Loc, Marks

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Substituted(str):
    """A string that holds text from the environment or a secret file, which messages must
    not repeat: `origin` says what it is (`the value of ${NAME}`), `secrets` are the
    parts that came from there. Equal to, and used as, the plain string."""

    origin: str
    secrets: tuple[str, ...]

    def __new__(cls, text: str, origin: str, secrets: tuple[str, ...]) -> Substituted:
        value = super().__new__(cls, text)
        value.origin = origin
        value.secrets = secrets
        return value

    def __reduce__(self) -> tuple[type[Substituted], tuple[str, str, tuple[str, ...]]]:
        return (Substituted, (str(self), self.origin, self.secrets))  # copies stay marked


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Replace `${NAME}` and `${NAME:-default}` in `text`; `$${` stands for a literal `${`.

    Raises ValueError naming the variable when one is unset or empty and has no default (write
    `${NAME:-}` to allow an empty value).
    """
    return _expand(text, env)[0]


def _expand(text: str, env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """`expand_env`, and the variables whose values were put in (name: value)."""
    out: list[str] = []
    used: dict[str, str] = {}
    i = 0
    while (j := text.find("$", i)) >= 0:
        out.append(text[i:j])
        if text.startswith("$${", j):
            out.append("${")
            i = j + 3
        elif text.startswith("${", j):
            end = text.find("}", j + 2)
            if end < 0:
                raise ValueError("'${' without a closing '}' (write '$${' for a literal '${')")
            name, has_default, default = text[j + 2 : end].partition(":-")
            if not _NAME.fullmatch(name):
                raise ValueError(f"'${{{text[j + 2 : end]}}}' is not a variable name")
            value = env.get(name)
            if not value:
                if not has_default:
                    state = "is not set" if value is None else "is empty"
                    raise ValueError(f"environment variable {name} {state}")
                value = default
            else:
                used[name] = value
            out.append(value)
            i = end + 1
        else:
            out.append("$")
            i = j + 1
    out.append(text[i:])
    return "".join(out), used


def substitute_env(
    data: Any,
    marks: Marks,
    *,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    keep_files: Collection[str] = (),
) -> Any:
    """Fill in environment variables in string values, and read `*_file` secrets.

    `password_file: /run/secrets/pg` becomes `password: <the file's text>` (one trailing newline
    removed), with errors at the `password_file` value. Keys in `keep_files` (e.g. `ca_file`)
    are paths the program opens itself and are only substituted. Relative secret files are read
    from `base_dir` (default: the YAML file's folder). Returns new data; `marks` learn the renames.
    """
    env = os.environ if env is None else env
    base = base_dir if base_dir is not None else marks.path.parent
    return _substitute(data, (), marks, env, base, frozenset(keep_files))


def _substitute(
    data: Any, loc: Loc, marks: Marks, env: Mapping[str, str], base: Path, keep: frozenset[str]
) -> Any:
    if isinstance(data, str):
        try:
            text, used = _expand(data, env)
        except ValueError as e:
            raise marks.error(loc, str(e)) from None
        if not used:
            return text
        origin = "the value of " + ", ".join(f"${{{name}}}" for name in used)
        return Substituted(text, origin, tuple(used.values()))
    if isinstance(data, list):
        return [_substitute(v, (*loc, i), marks, env, base, keep) for i, v in enumerate(data)]
    if not isinstance(data, dict):
        return data
    result: dict[Any, Any] = {}
    for key, value in data.items():
        new = _substitute(value, (*loc, key), marks, env, base, keep)
        if isinstance(key, str) and key.endswith("_file") and key != "_file" and key not in keep:
            target = key.removesuffix("_file")
            if target in data:
                raise marks.error(
                    (*loc, key), f"set either '{target}' or '{key}', not both", key=True
                )
            if not isinstance(new, str) or not new:
                raise marks.error((*loc, key), "expected the path of a file to read the value from")
            secret = _read_secret(new, base, marks, (*loc, key))
            result[target] = Substituted(secret, "the content of a secret file", (secret,))
            marks.rename((*loc, key), (*loc, target))
        else:
            result[key] = new
    return result


def _read_secret(value: str, base: Path, marks: Marks, loc: Loc) -> str:
    path = base / Path(value).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise marks.error(loc, f"secret file not found: {value}") from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise marks.error(loc, f"cannot read secret file {value}: {reason}") from None
    return text.removesuffix("\n").removesuffix("\r")

"""Reading the YAML files admins edit, so that every mistake is reported as one line.

`load_yaml` keeps the line and column of every key and value, `validate` runs a pydantic model
over the data and turns its first error into `InvalidInput("<file>:<line>:<col>: <field>: ...")`
in plain words, and `substitute_env` fills in `${VAR}` references and `*_file` secrets while
keeping the positions. `parse_model` is the usual combination:

    workflow = parse_model(Path("workflows/stage-gates.yaml"), Workflow)

Semantic checks in a model (an unknown stage, a duplicate id) raise `FieldError` from a
validator with the path of the offending value relative to that model, so their message points
at the right line too:

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise FieldError(f"duplicate rule id '{rule.id}'", "rules", i, "id")
            seen.add(rule.id)
        return self
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crmsync.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]
"""A path into YAML data: mapping keys and list indexes, e.g. ("connections", 2, "auth")."""

Position = tuple[int, int]
"""A 1-based (line, column)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class FileModel(BaseModel):
    """A base for models read from files: unknown keys are errors, numbers may stand for text."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class FieldError(ValueError):
    """Raised from a model's validator to report a problem at a path below that model.

    `path` is relative to the model whose validator raises it; `key=True` points at the key
    rather than its value (for a misplaced or duplicate key).
    """

    def __init__(self, message: str, *path: str | int, key: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.path: Loc = path
        self.key = key


class Marks:
    """Where each key and value of a YAML document is, for error messages that name a line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[Loc, Position] = {}
        self._values: dict[Loc, Position] = {}
        self._names: dict[Loc, str] = {}  # keys renamed after loading, by their new path

    def add(self, loc: Loc, value: Position, key: Position | None = None) -> None:
        """Record the position of the value at `loc` (and of its key, inside a mapping)."""
        self._values[loc] = value
        if key is not None:
            self._keys[loc] = key

    def rename(self, old: Loc, new: Loc) -> None:
        """Let `new` answer with the positions of `old` (a key rewritten after loading)."""
        for table in (self._keys, self._values):
            for loc in [loc for loc in table if loc[: len(old)] == old]:
                table[new + loc[len(old) :]] = table[loc]
        self._names[new] = str(old[-1])

    def __contains__(self, loc: object) -> bool:
        return loc in self._values

    def position(self, loc: Sequence[str | int], *, key: bool = False) -> Position:
        """The line and column of `loc`: its value (or key, with `key=True`), or, when nothing
        is there (a missing field), the key of the closest enclosing entry that is."""
        loc = tuple(loc)
        if loc in self._values:
            return self._keys.get(loc, self._values[loc]) if key else self._values[loc]
        for n in range(len(loc) - 1, -1, -1):
            prefix = loc[:n]
            if prefix in self._values:
                return self._keys.get(prefix, self._values[prefix])
        return (1, 1)

    def where(self, loc: Sequence[str | int], *, key: bool = False) -> str:
        """`<file>:<line>:<col>` of `loc`, the start of an error message."""
        line, col = self.position(loc, key=key)
        return f"{self.path}:{line}:{col}"

    def name(self, loc: Sequence[str | int]) -> str:
        """The last key of `loc` as written in the file (before any rename)."""
        return self._names.get(tuple(loc), str(loc[-1]))

    def dotted(self, loc: Sequence[str | int]) -> str:
        """`loc` as admins read it: `connections[2].auth.password` (in the file's own words)."""
        out = ""
        for n, part in enumerate(loc):
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                name = self._names.get(tuple(loc[: n + 1]), part)
                out += f".{name}" if out else name
        return out

    def error(self, loc: Sequence[str | int], message: str, *, key: bool = False) -> InvalidInput:
        """An `InvalidInput` for the value at `loc`: `<file>:<line>:<col>: <field>: <message>`."""
        field = self.dotted(loc)
        return InvalidInput(f"{self.where(loc, key=key)}: {field + ': ' if field else ''}{message}")


# --- reading YAML -------------------------------------------------------------------------------


def load_yaml(path: Path) -> tuple[Any, Marks]:
    """Parse one YAML document safely into plain data, with the position of every key and value.

    Duplicate keys are errors (YAML would keep the last silently); so are unreadable, non-UTF-8
    and empty files, each reported as one `InvalidInput` line.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _offset_position(raw, e.start)
        raise InvalidInput(
            f"{path}:{line}:{col}: not UTF-8 text (byte 0x{raw[e.start]:02x}); "
            "save the file as UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    marks = Marks(path)
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise InvalidInput(f"{path}:1:1: file is empty")
        data = _build(loader, node, (), marks, None, set())
    except yaml.MarkedYAMLError as e:
        raise InvalidInput(_yaml_error(path, e)) from None
    except yaml.reader.ReaderError as e:
        line, col = _offset_position(text, e.position)
        raise InvalidInput(
            f"{path}:{line}:{col}: invalid YAML: control character U+{e.character:04X} "
            "is not allowed"
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - PyYAML raises the two above for files
        raise InvalidInput(f"{path}:1:1: invalid YAML: {e}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, marks


def _offset_position(text: str | bytes, offset: int) -> Position:
    newline: Any = b"\n" if isinstance(text, bytes) else "\n"
    line = text.count(newline, 0, offset) + 1
    return line, offset - (text.rfind(newline, 0, offset) + 1) + 1


_YAML_HINTS = (
    ("'\\t'", "indent with spaces, not tabs"),
    ("expected <block end>", "check the indentation"),
    ("mapping values are not allowed", "check the indentation, or quote a value containing ': '"),
    ("could not find expected ':'", "check for a missing ':' or an unclosed quote"),
)


def _yaml_error(path: Path, e: yaml.MarkedYAMLError) -> str:
    """YAML's own message, on one line, at YAML's own position, with a hint where one helps."""
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = " ".join((e.problem or "syntax error").split())
    context = " ".join((e.context or "").split())
    if problem.startswith("but ") and context:  # "expected a single document ... but found"
        message = f"invalid YAML: {context} {problem}"
    else:
        message = f"invalid YAML: {problem}"
        if context and e.context_mark and e.context_mark.line != (mark.line if mark else -1):
            message += f" ({context} on line {e.context_mark.line + 1})"
    hints = [hint for text, hint in _YAML_HINTS if text in problem]
    if hints:
        message += f"; {hints[0]}"
    return f"{path}:{line}:{col}: {message}"


def _mark(node: Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _is_blank(node: Node) -> bool:
    """A value left empty (`key:` with nothing after it): its position is better its key's."""
    return isinstance(node, ScalarNode) and node.value == "" and node.style is None


def _build(
    loader: yaml.SafeLoader,
    node: Node,
    loc: Loc,
    marks: Marks,
    key_node: Node | None,
    active: set[int],
) -> Any:
    """Construct plain data from `node`, recording marks for `loc` and everything below."""
    value_mark = _mark(key_node) if key_node is not None and _is_blank(node) else _mark(node)
    marks.add(loc, value_mark, _mark(key_node) if key_node is not None else None)
    if id(node) in active:
        raise InvalidInput(f"{marks.where(loc)}: invalid YAML: an alias refers to itself")
    if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
        active.add(id(node))
        seen: dict[Any, Node] = {}
        for k, _ in node.value:
            if k.tag == _MERGE_TAG:
                continue
            key = _key(loader, k, marks)
            if key in seen:
                line = seen[key].start_mark.line + 1
                where = f"{marks.path}:{k.start_mark.line + 1}:{k.start_mark.column + 1}"
                field = marks.dotted((*loc, key))
                raise InvalidInput(f"{where}: {field}: duplicate key (first on line {line})")
            seen[key] = k
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges; own keys win
        result: dict[Any, Any] = {}
        for k, v in node.value:
            key = _key(loader, k, marks)
            result[key] = _build(loader, v, (*loc, key), marks, k, active)
        active.discard(id(node))
        return result
    if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
        active.add(id(node))
        items = [
            _build(loader, v, (*loc, i), marks, None, active) for i, v in enumerate(node.value)
        ]
        active.discard(id(node))
        return items
    return loader.construct_object(node, deep=True)  # scalars, and !!set, !!omap and the like


def _key(loader: yaml.SafeLoader, node: Node, marks: Marks) -> Any:
    if not isinstance(node, ScalarNode):
        line, col = _mark(node)
        message = "a key must be a plain value, not a list or mapping"
        raise InvalidInput(f"{marks.path}:{line}:{col}: {message}")
    return loader.construct_object(node, deep=True)


# --- environment variables and secret files -----------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Replace `${NAME}` and `${NAME:-default}` in `text`; `$${` stands for a literal `${`.

    Raises ValueError naming the variable when one is unset or empty and has no default (write
    `${NAME:-}` to allow an empty value).
    """
    out: list[str] = []
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
            out.append(value)
            i = end + 1
        else:
            out.append("$")
            i = j + 1
    out.append(text[i:])
    return "".join(out)


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
            return expand_env(data, env)
        except ValueError as e:
            raise marks.error(loc, str(e)) from None
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
            result[target] = _read_secret(new, base, marks, (*loc, key))
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


# --- validating with pydantic -------------------------------------------------------------------


def parse_model(path: Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Load `path` and validate it as `model`; any problem becomes a one-line `InvalidInput`.

    The validation context holds `base_dir` (the file's folder, for relative paths), `source`
    (the file) and whatever `context` adds.
    """
    data, marks = load_yaml(path)
    return validate(model, data, marks, context=context)


def validate(
    model: type[M], data: Any, marks: Marks, *, context: dict[str, Any] | None = None
) -> M:
    """`model.model_validate(data)`, reporting the first problem in file order at its position."""
    ctx = {"base_dir": marks.path.parent.absolute(), "source": marks.path, **(context or {})}
    try:
        return model.model_validate(data, context=ctx)
    except ValidationError as e:
        problems = _problems(model, data, marks, e.errors(include_url=False))
    first, *rest = sorted(problems, key=lambda p: p.position)
    more = f" (and {len(rest)} more problem{'s' if len(rest) > 1 else ''})" if rest else ""
    line, col = first.position
    field = marks.dotted(first.field)
    raise InvalidInput(
        f"{marks.path}:{line}:{col}: {field + ': ' if field else ''}{first.message}{more}"
    ) from None


class _Problem(typing.NamedTuple):
    position: Position
    field: Loc  # the path named in the message
    message: str
    kind: str
    suggestion: str | None = None


def _problems(
    model: type[BaseModel], data: Any, marks: Marks, errors: list[ErrorDetails]
) -> list[_Problem]:
    problems = [_problem(model, data, marks, err) for err in errors]
    # `mappin:` for `mapping:` is one mistake, not also a missing `mapping`
    explained = {(p.field, p.suggestion) for p in problems if p.kind == "extra_forbidden"}
    kept = [
        p
        for p in problems
        if not (p.kind == "missing" and p.field and (p.field[:-1], str(p.field[-1])) in explained)
    ]
    return kept or problems


def _problem(model: type[BaseModel], data: Any, marks: Marks, err: ErrorDetails) -> _Problem:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    raw: Loc = tuple(err["loc"])
    on_key = bool(raw) and raw[-1] == "[key]"  # a bad mapping key: point at the key itself
    if on_key:
        raw = raw[:-1]
    error = ctx.get("error")
    if isinstance(error, FieldError):
        loc = _loc(model, data, raw) + error.path
        return _Problem(marks.position(loc, key=error.key), loc, error.message, kind)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        raw += (str(ctx.get("discriminator", "")).strip("'"),)
    loc = _loc(model, data, raw)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _allowed_fields(model, raw[:-1])
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean '{close[0]}'?)"
        elif allowed and len(allowed) <= 12:
            hint = f" (expected one of: {', '.join(allowed)})"
        else:
            hint = ""
        message = f"unknown field '{marks.name(loc)}'{hint}"
        return _Problem(
            marks.position(loc, key=True), loc[:-1], message, kind, close[0] if close else None
        )
    message = _message(kind, err["msg"], ctx, err.get("input"))
    return _Problem(marks.position(loc, key=on_key), loc, message, kind)


def _loc(model: type[BaseModel], data: Any, raw: Loc) -> Loc:
    """Pydantic's error location as a path into the data: without union tags and member names."""
    loc = _strip_labels(model, raw)
    return loc if loc is not None else _data_loc(data, raw)


def _strip_labels(tp: Any, raw: Loc) -> Loc | None:
    """`raw` without the labels pydantic adds after a union, found by following the types;
    None where the types cannot be followed."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return _strip_labels(members[0], raw)
        if not raw:
            return ()
        for member in members:
            if _is_member(member, raw[0]):
                loc = _strip_labels(member, raw[1:])
                if loc is not None:
                    return loc
        return None
    if not raw:
        return ()
    part, rest = raw[0], raw[1:]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                loc = _strip_labels(f.annotation, rest)
                return None if loc is None else (part, *loc)
        return (part,) if not rest else None  # an unknown key
    if (origin in (list, tuple, set, frozenset, Sequence) and args) or (
        origin in (dict, Mapping) and len(args) == 2
    ):
        loc = _strip_labels(args[-1] if origin in (dict, Mapping) else args[0], rest)
        return None if loc is None else (part, *loc)
    return None


def _data_loc(data: Any, raw: Loc) -> Loc:
    """Pydantic's error location as a path into the data, guessed from the data alone.

    A name in the location is a key where the data has it, otherwise a union label to skip.
    Of the possible readings, the best ends on a key (present, or absent from a mapping), then
    skips the fewest names, then finds the last key present.
    """
    found: list[tuple[bool, int, bool, Loc]] = []  # (ends on a label, skips, absent, path)

    def walk(node: Any, i: int, acc: Loc, skips: int, skipped: bool = False) -> None:
        if i == len(raw):
            found.append((skipped, skips, False, acc))
            return
        part, last = raw[i], i == len(raw) - 1
        here = isinstance(node, dict) and part in node
        here |= isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if here:
            walk(node[part], i + 1, (*acc, part), skips)
        elif last and isinstance(node, dict):
            found.append((False, skips, True, (*acc, part)))
        if isinstance(part, str) and not (last and isinstance(node, dict)):
            walk(node, i + 1, acc, skips + 1, skipped=True)

    walk(data, 0, (), 0)
    return min(found, key=lambda f: f[:3])[3] if found else raw


def _allowed_fields(model: type[BaseModel], raw: Loc) -> list[str]:
    """The field names a mapping at pydantic location `raw` may have (for did-you-mean)."""
    fields: list[str] = []
    for tp in _types_at(model, raw):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields += [f.alias or name for name, f in tp.model_fields.items()]
    return list(dict.fromkeys(fields))


def _types_at(tp: Any, raw: Loc) -> Iterator[Any]:
    """The types that could be validating the value at pydantic location `raw` under `tp`."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1 or not raw:
            for member in members:
                yield from _types_at(member, raw)
            return
        tagged = [m for m in members if _is_member(m, raw[0])]
        if tagged:
            for member in tagged:
                yield from _types_at(member, raw[1:])
        else:
            for member in members:
                yield from _types_at(member, raw)
        return
    if not raw:
        yield tp
        return
    part = raw[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                yield from _types_at(f.annotation, raw[1:])
    elif origin in (list, tuple, set, frozenset, Sequence) and args:
        yield from _types_at(args[0], raw[1:])
    elif origin in (dict, Mapping) and len(args) == 2:
        yield from _types_at(args[1], raw[1:])


def _is_member(tp: Any, label: str | int) -> bool:
    """Whether a union member is the one pydantic names `label` (its tag or its class name)."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return getattr(tp, "__name__", None) == label
    if tp.__name__ == label:
        return True
    return any(
        typing.get_origin(f.annotation) is typing.Literal and label in typing.get_args(f.annotation)
        for f in tp.model_fields.values()
    )


_TYPE_WORDS = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "decimal_type": "expected a number",
    "decimal_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "datetime_type": "expected a date and time (YYYY-MM-DDTHH:MM:SSZ)",
    "datetime_parsing": "expected a date and time (YYYY-MM-DDTHH:MM:SSZ)",
    "datetime_from_date_parsing": "expected a date and time (YYYY-MM-DDTHH:MM:SSZ)",
    "time_delta_type": "expected a duration",
    "time_delta_parsing": "expected a duration",
}


def _message(kind: str, msg: str, ctx: dict[str, Any], value: Any) -> str:
    """Pydantic's error in words an admin reads without knowing pydantic."""
    if kind in ("missing", "union_tag_not_found"):
        return "field required"
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind] + _got(value)
    if kind in ("literal_error", "enum", "union_tag_invalid"):
        expected = str(ctx.get("expected") or ctx.get("expected_tags") or "")
        options = re.findall(r"'((?:[^'\\]|\\.)*)'", expected) or [expected]
        given = str(ctx.get("tag", value))
        close = difflib.get_close_matches(given, options, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"must be one of: {', '.join(options)}, not {given!r}{hint}"
    bounds = {
        "greater_than": "must be greater than {gt}",
        "greater_than_equal": "must be at least {ge}",
        "less_than": "must be less than {lt}",
        "less_than_equal": "must be at most {le}",
        "multiple_of": "must be a multiple of {multiple_of}",
        "too_long": "must have at most {max_length} item(s)",
        "string_too_long": "must be at most {max_length} characters",
        "string_pattern_mismatch": "must match the pattern {pattern}",
    }
    if kind in bounds:
        return bounds[kind].format(**ctx)
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must have at least {n} items"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return msg[:1].lower() + msg[1:]


def _got(value: Any) -> str:
    if value is None:
        return ", got nothing"
    if isinstance(value, dict):
        return ", got a mapping"
    if isinstance(value, list):
        return ", got a list"
    if isinstance(value, bool):
        return f", got {str(value).lower()}"
    if isinstance(value, str | int | float):
        return f", got {value!r}"
    return ""

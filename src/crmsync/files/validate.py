"""Validating YAML data with a pydantic model; every problem becomes one line, in file order."""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from crmsync.files.marks import Loc, Marks, Position
from crmsync.files.messages import plain_message, scrub
from crmsync.files.problems import Problems
from crmsync.files.reading import load_yaml
from crmsync.model.checks import FieldError

M = TypeVar("M", bound=BaseModel)


class FileModel(BaseModel):
    """A base for models read from files: unknown keys are errors, numbers may stand for text,
    and a number is finite (YAML's `.inf` and `.nan` are refused)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, allow_inf_nan=False
    )


def parse_model(path: Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Load `path` and validate it as `model`; its problems raise `Problems`.

    The validation context holds `base_dir` (the file's folder, for relative paths), `source`
    (the file) and whatever `context` adds.
    """
    data, marks = load_yaml(path)
    return validate(model, data, marks, context=context)


def validate(
    model: type[M], data: Any, marks: Marks, *, context: dict[str, Any] | None = None
) -> M:
    """`model.model_validate(data)`; raises `Problems` with every problem at its position, in
    file order (its message is the first one, with a count of the rest)."""
    ctx = {"base_dir": marks.path.parent.absolute(), "source": marks.path, **(context or {})}
    try:
        return model.model_validate(data, context=ctx)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        problems = _problems(model, data, marks, errors) + _as_closest_tag(
            model, data, marks, errors, ctx
        )
    lines = []
    for problem in sorted(problems, key=lambda p: p.position):
        line, col = problem.position
        field = marks.dotted(problem.field)
        message = scrub(problem.message, data)
        lines.append(f"{marks.path}:{line}:{col}: {field + ': ' if field else ''}{message}")
    raise Problems(list(dict.fromkeys(lines))) from None


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


def _as_closest_tag(
    model: type[BaseModel],
    data: Any,
    marks: Marks,
    errors: list[ErrorDetails],
    context: dict[str, Any],
) -> list[_Problem]:
    """A mapping whose tag is unknown (a `kind:` typo) is not checked further by pydantic, which
    hid its other mistakes: read again with the closest tag, those under it are reported too."""
    out: list[_Problem] = []
    for err in errors:
        ctx = err.get("ctx") or {}
        tag, key = str(ctx.get("tag", "")), str(ctx.get("discriminator", "")).strip("'")
        options = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected_tags", "")))
        close = difflib.get_close_matches(tag, options, n=1, cutoff=0.6)
        if err["type"] != "union_tag_invalid" or not close:
            continue
        path = _loc(model, data, tuple(err["loc"]))
        fixed = copy.deepcopy(data)
        node = fixed
        try:
            for part in path:
                node = node[part]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(node, dict) or node.get(key) != tag:
            continue
        node[key] = close[0]
        try:
            model.model_validate(fixed, context=context)
        except ValidationError as again:
            for problem in _problems(model, fixed, marks, again.errors(include_url=False)):
                # a field the guessed kind would need is a guess: only what is there is judged
                if problem.kind == "missing" or problem.field == (*path, key):
                    continue
                if problem.field[: len(path)] == path:
                    out.append(problem)
    return out


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
        homes = _homes_of(model, raw[:-1], name)  # a key one level too far out (outdented)
        near = difflib.get_close_matches(name, allowed, n=1, cutoff=0.8)  # a plain typo
        if homes and not near:
            close = []
            where = " or ".join(f"'{h}:'" for h in homes)
            hint = f" (it belongs under {where})"
        elif close:
            hint = f" (did you mean '{close[0]}'?)"
        elif allowed and len(allowed) <= 12:
            hint = f" (expected one of: {', '.join(allowed)})"
        else:
            hint = ""
        message = f"unknown field '{marks.name(loc)}'{hint}"
        return _Problem(
            marks.position(loc, key=True), loc[:-1], message, kind, close[0] if close else None
        )
    message = plain_message(kind, err["msg"], ctx, err.get("input"), whole_file=not loc)
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


def _homes_of(model: type[BaseModel], raw: Loc, name: str) -> list[str]:
    """The fields of the mapping at `raw` whose own mappings have a field `name`."""
    homes: list[str] = []
    for tp in _types_at(model, raw):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for field_name, f in tp.model_fields.items():
                inner = [t for t in _types_at(f.annotation, ()) if isinstance(t, type)]
                if any(issubclass(t, BaseModel) and name in _names(t) for t in inner):
                    homes.append(f.alias or field_name)
    return list(dict.fromkeys(homes))


def _names(model: type[BaseModel]) -> set[str]:
    return {f.alias or n for n, f in model.model_fields.items()}


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

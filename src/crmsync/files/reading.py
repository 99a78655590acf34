"""Reading YAML while keeping every key's and value's position (duplicate keys, merges, tabs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crmsync.errors import InvalidInput
from crmsync.files.limits import MAX_FILE_BYTES, LimitedLoader
from crmsync.files.marks import Loc, Marks, Position

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


def load_yaml(path: Path) -> tuple[Any, Marks]:
    """Parse one YAML document safely into plain data, with the position of every key and value.

    Duplicate keys are errors (YAML would keep the last silently); so are unreadable, non-UTF-8
    and empty files, and files past a limit of `crmsync.files.limits` (size, nesting depth,
    alias expansion), each reported as one `InvalidInput` line.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read file: {e.strerror or e}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"{path}:1:1: file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB "
            f"({MAX_FILE_BYTES:,} bytes); split it or shorten it"
        )
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
    loader: LimitedLoader | None = None
    try:
        loader = LimitedLoader(text, str(path))
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
    if id(node) in active:  # pragma: no cover - LimitedLoader refuses such an alias first
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

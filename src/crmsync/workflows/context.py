"""What conditions and templates see of a deal (its fields, derived fields and today), read on
demand per variable, and conditions that remember their answers by those values."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from crmsync.model import FIELDS, Opportunity
from crmsync.workflows.cel_values import to_cel
from crmsync.workflows.condition import Condition
from crmsync.workflows.derived import Derived
from crmsync.workflows.rules import Subject

OPP_FIELDS = tuple(f.name for f in dataclasses.fields(Opportunity))
DERIVED_FIELDS = tuple(f.name for f in dataclasses.fields(Derived))
#: Placeholders a Subject holds before its first deal.
NO_OPPORTUNITY = Opportunity("", "", "", "", datetime.min)
NO_DERIVED = Derived(None, None, None, 0, 0, 0, (), None, None, None)


def context_values(opp: Opportunity, derived: Derived, today: date) -> dict[str, Any]:
    """What conditions and templates see: the opportunity, its derived fields, and today."""
    values = {name: getattr(opp, name) for name in OPP_FIELDS}
    values.update({name: getattr(derived, name) for name in DERIVED_FIELDS})
    values["key"] = opp.key
    values["today"] = today
    values["skipped_stages"] = list(derived.skipped_stages)
    return values


def _value_of(name: str) -> Callable[[Opportunity, Derived, date], Any]:
    """How to read one variable a condition uses, straight from its source."""
    if name in OPP_FIELDS:
        return lambda o, d, t: getattr(o, name)
    if name == "skipped_stages":
        return lambda o, d, t: list(d.skipped_stages)
    if name in DERIVED_FIELDS:
        return lambda o, d, t: getattr(d, name)
    if name == "key":
        return lambda o, d, t: o.key
    if name == "today":
        return lambda o, d, t: t
    return lambda o, d, t: None


def _subject_value(name: str) -> Callable[[Any], Any]:
    """`_value_of` reading a Subject, in one C call where it can (a dotted attrgetter)."""
    if name in OPP_FIELDS:
        read = attrgetter(f"opp.{name}")
        if name in FIELDS and FIELDS[name].type == "decimal":  # as CEL sees it: a double

            def as_double(s: Any) -> Any:
                value = read(s)
                return None if value is None else float(value)

            return as_double
        return read
    if name in DERIVED_FIELDS and name != "skipped_stages":
        return attrgetter(f"derived.{name}")
    if name == "today":
        return attrgetter("today")
    value_of = _value_of(name)
    return lambda s: value_of(s.opp, s.derived, s.today)


class LazyContext(Mapping[str, Any]):
    """The deal a Subject looks at, as CEL sees it (`cel_context` values), read on demand.

    Conditions mostly stop after a value or two (`amount != null && ...`), so converting every
    variable of every condition up front, per deal, would cost more than the conditions. One
    instance serves every deal of an evaluation: it reads whatever deal the Subject holds now.
    """

    __slots__ = ("_names", "_readers", "_subject")

    def __init__(self, names: Sequence[str]) -> None:
        self._names = tuple(names)
        self._readers = {n: _subject_value(n) for n in self._names}
        self._subject: Subject | None = None

    def of(self, subject: Subject) -> Mapping[str, Any]:
        """This context, reading `subject` (what `Subject.cel` asks for)."""
        self._subject = subject
        return self

    def __getitem__(self, name: str) -> Any:
        value = self._readers[name](self._subject)
        return value if value.__class__ in _AS_IS else to_cel(value)

    def get(self, name: str, default: Any = None) -> Any:
        read = self._readers.get(name)
        if read is None:
            return default
        value = read(self._subject)
        return value if value.__class__ in _AS_IS else to_cel(value)

    def __contains__(self, name: object) -> bool:
        return name in self._readers

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_AS_IS = frozenset({str, bool, int, float, type(None)})


def values_reader(names: Sequence[str]) -> Callable[[Opportunity, Derived, date], dict[str, Any]]:
    """Reads `names` (as `context_values` gives them), the fields of each source in one go."""
    opp_names = tuple(n for n in names if n in OPP_FIELDS)
    derived_names = tuple(n for n in names if n in DERIVED_FIELDS and n != "skipped_stages")
    others = tuple(
        (n, _value_of(n)) for n in names if n not in opp_names and n not in derived_names
    )
    read_opp = _getter(opp_names)
    read_derived = _getter(derived_names)

    def read(opp: Opportunity, derived: Derived, today: date) -> dict[str, Any]:
        values = dict(zip(opp_names, read_opp(opp), strict=True))
        if derived_names:
            values.update(zip(derived_names, read_derived(derived), strict=True))
        for n, value_of in others:
            values[n] = value_of(opp, derived, today)
        return values

    return read


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """Several attributes at once, always as a tuple."""
    if not names:
        return lambda o: ()
    if len(names) == 1:
        get_one = attrgetter(names[0])
        return lambda o: (get_one(o),)
    get: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
    return get


class _Memo:
    """A CEL condition whose results are remembered by the values of its variables.

    CEL is pure, so the same values give the same answer; many conditions read few, repetitive
    values (`!is_closed`, a stage name), and a dict lookup is far cheaper than a CEL call. Only
    plain hashable values are keys (with their type, so 1, 1.0 and true differ; zeros keep
    their sign); errors are never remembered. When a condition's values hardly repeat
    (an amount, a timestamp), remembering stops after a trial: memory stays bounded.
    """

    __slots__ = ("_cache", "_calls", "_condition", "_hits", "_on", "source", "variables")

    TRIAL = 2000
    LIMIT = 4096

    def __init__(self, condition: Condition) -> None:
        self._condition = condition
        self.source = condition.source
        self.variables = condition.variables
        self._cache: dict[tuple[Any, ...], bool] = {}
        self._calls = self._hits = 0
        self._on = True

    def __call__(self, context: Mapping[str, Any]) -> bool:
        if not self._on:
            return self._condition(context)
        key: list[Any] = []
        for name in self.variables:
            value = context.get(name, _MISSING)
            kind = value.__class__
            if kind not in _MEMO_TYPES:
                return self._condition(context)
            if kind is float and value == 0.0:
                value = repr(value)  # 0.0 and -0.0 are equal but may give different answers
            key.append(kind)
            key.append(value)
        frozen = tuple(key)
        self._calls += 1
        found = self._cache.get(frozen)
        if found is not None:
            self._hits += 1
            return found
        result = self._condition(context)
        if len(self._cache) < self.LIMIT:
            self._cache[frozen] = result
        if self._calls >= self.TRIAL and self._hits * 2 < self._calls:
            self._on = False
            self._cache.clear()
        return result


_MISSING = object()
_MEMO_TYPES = frozenset({bool, int, float, str, type(None)})


def memoized(condition: Condition) -> Condition:
    """`condition`, remembering its answers; as it is when it is answered without CEL anyway."""
    if condition.fast:  # plain comparisons: cheaper than building a memo key
        return condition
    return _Memo(condition)  # type: ignore[return-value]

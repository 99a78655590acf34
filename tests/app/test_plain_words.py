"""What reps read is plain words: the shipped workflows' plan over a generated sandbox (both
CRMs) has no CEL, rule ids or field names in its task texts and reasons, and a reason and the
task text it goes with agree on every number."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.app.factory import build_connector
from crmsync.app.plan import plan
from crmsync.app.sync import sync
from crmsync.model import FIELDS
from crmsync.store import Store
from crmsync.workflows.context import DERIVED_FIELDS
from crmsync.workflows.load import load_workflows
from crmsync.workflows.plan import Firing
from tests.actions.world import config_for
from tests.conftest import NOW, make_sandbox

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "workflows"

CEL = ("==", "&&", "||", "null", "!=")
RULE_IDS = sorted({r.id for w in load_workflows([SHIPPED]) for r in w.workflow.rules})
# internal names: the model's and the derived fields' names with an underscore in them
INTERNAL = sorted(n for n in {*FIELDS, *DERIVED_FIELDS} if "_" in n)
# the same quantity as written in a reason and in a task text
NUMBERS = {
    "days": re.compile(r"\bfor\s+(-?\d+)\s+days?\b"),
    "date": re.compile(r"\b(\d{4}-\d{2}-\d{2})\b"),
    "pushes": re.compile(r"\bpushed\s+(\d+)\s+times\b"),
    "money": re.compile(r"\b([A-Z]{3} -?[\d,]+(?:\.\d\d)?)\b"),
}

LIMIT = re.compile(r"\bfor (\d+) days? \((?:limit|usual:) (\d+)\b")


@pytest.fixture(scope="module")
def firings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Firing]]:
    """Every firing of the shipped workflows on 600 generated deals per CRM, synced to SQLite."""
    tmp = tmp_path_factory.mktemp("plain")
    url = f"sqlite:///{tmp / 'crmsync.db'}"
    sb = make_sandbox(600)
    try:
        config = config_for(sb, url, SHIPPED)
        store = Store.open(url)
        try:
            for connection in config.connections:
                connector = build_connector(connection)
                try:
                    sync(store, connector)
                finally:
                    connector.close()
        finally:
            store.close()
        out: list[Firing] = []
        plan(tmp / "unused.yaml", config=config, now=NOW, on_firing=out.append)
        yield out
    finally:
        sb.stop()


def _texts(f: Firing) -> list[str]:
    """What a rep reads of one firing: the rule's title, its reasons, its task's texts."""
    texts = [f.rule_title, *f.reasons]
    for action in f.actions:
        texts += [t for t in (action.subject, action.body) if t]
    return texts


def test_rep_facing_text_has_no_cel_rule_ids_or_field_names(firings: list[Firing]) -> None:
    """No subject, body, reason or title shows CEL, a rule id or an internal field name."""
    kinds = Counter(f.kind for f in firings)
    assert {"staleness", "hygiene", "stage_gate", "custom"} <= set(kinds), kinds
    assert sum(1 for f in firings for a in f.actions if a.kind == "task") > 100
    words = [re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])") for name in RULE_IDS + INTERNAL]
    bad: list[tuple[str, str]] = []
    for f in firings:
        for text in _texts(f):
            found = [t for t in CEL if t in text] + [w.pattern for w in words if w.search(text)]
            if found:
                bad.append((f.rule_id, text))
    assert not bad, bad[:5]


def test_a_reason_and_its_task_agree_on_every_number(firings: list[Firing]) -> None:
    """Each number a reason gives (days, dates, pushes, money) is the one its task text shows."""
    compared: Counter[str] = Counter()
    wrong: list[tuple[str, str, str]] = []
    for f in firings:
        task = " ".join(t for a in f.actions if a.kind == "task" for t in (a.subject, a.body) if t)
        if not task:
            continue
        reason = " ".join(f.reasons)
        for what, pattern in NUMBERS.items():
            said, shown = pattern.findall(reason), pattern.findall(task)
            if said and shown:
                compared[f"{f.rule_id}:{what}"] += 1
                if said[0] not in shown:
                    wrong.append((f.rule_id, reason, task))
    assert not wrong, wrong[:5]
    # a reason never looks false: the days it shows are over the limit it shows
    for f in firings:
        for reason in f.reasons:
            over = LIMIT.search(reason)
            if over is not None:
                compared["limits"] += 1
                assert int(over[1]) > int(over[2]), reason
    assert compared["limits"] > 10
    # the rules whose texts repeat a number of their reason were all compared, many times
    for key in (
        "no-recent-activity:days",
        "stuck-in-stage:days",
        "close-date-past:date",
        "close-date-pushed:pushes",
    ):
        assert compared[key] >= 3, compared

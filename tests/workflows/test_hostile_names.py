"""Hostile deal and owner names (Unicode, control characters, markup, great length) through
task texts, the plan table and its summary, digests and what the connectors send: each is
escaped for its medium and bounded in length.

The media: a task subject is one line of plain text (255 characters), a body plain text with
line breaks (32,000); Salesforce's Subject and Description take them as they are; HubSpot's
``hs_task_body`` is HTML (escaped, ``<p>`` paragraphs and ``<br>`` line breaks, 65,536
characters); the plan table is a terminal (no control characters, lines of at most 300
characters).
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import io
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmsync.actions.intents import Context, plan_writes
from crmsync.cli.format import LINE_LIMIT, print_plan_summary
from crmsync.cli.workflows import firing_lines
from crmsync.config import load_mapping
from crmsync.connectors import hubspot_writes, salesforce_writes
from crmsync.connectors.base import Write
from crmsync.model import Opportunity
from crmsync.model.text import BODY_LIMIT, HTML_LIMIT, SUBJECT_LIMIT
from crmsync.workflows.examples import build
from crmsync.workflows.load import LoadedWorkflow, load_workflow
from crmsync.workflows.plan import Firing, PlanSummary, evaluate_stream
from crmsync.workflows.schema import Example

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WORKFLOW = """name: hostile-names
rules:
  - id: call
    kind: custom
    condition: amount != null
    title: Call them
    actions:
      task:
        subject: "{{ name }} needs a call"
        body: |-
          {{ name }} ({{ owner_name }})
          {{ reasons|join(', ') }}
"""
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "\x1b[2J\x1b[31m",
        "\r\n",
        "\r",
        "\x00",
        "\x85",
        "\u202e",
        "\u2066",
        "&amp;",
        "\"'",
        "\t",
        "\u2028",
        "{{ 7*7 }}",
        "<b onmouseover=x>",
        "😀",
        "é",
        "\x7f",
    ]
)
NAMES = st.lists(st.one_of(HOSTILE, st.text(max_size=12)), max_size=12).map("".join)
LONG = st.tuples(NAMES, st.integers(1, 400)).map(lambda t: t[0] * t[1])


class FakeHubSpot:
    """Records the task-create bodies the HubSpot connector sends (and answers nothing)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.objects = type("Objects", (), {"batch_api": self})()  # HubSpotApi keeps it
        self.raw: dict[str, Any] = {}  # HubSpotApi's keywords for every call

    def create(self, object_type: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.sent.append(body)
        return {"results": []}

    def call(self, label: str, run: Any) -> Any:
        return run()


class FakeSalesforce:
    """Records the sObject Collections bodies the Salesforce connector sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def restful(self, path: str, method: str, json: dict[str, Any]) -> list[Any]:
        self.sent.append(json)
        return []

    def call(self, label: str, run: Any) -> Any:
        return run(self)


def loaded_workflow(tmp: Path) -> LoadedWorkflow:
    path = tmp / "hostile-names.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    return load_workflow(path)


def firing_for(loaded: LoadedWorkflow, name: str, owner: str) -> Firing:
    """The one firing of the workflow on a deal called `name` owned by `owner`."""
    opportunity = {"name": "x", "amount": 100, "owner_id": "005A", "stage_canonical": "proposal"}
    example = Example(name="t", now=NOW, opportunity=opportunity, fires=[])
    base, history = build(example, loaded, 0)
    opp: Opportunity = dataclasses.replace(base, name=name, owner_name=owner)
    firings: list[Firing] = []
    evaluate_stream(loaded, iter([(opp, history)]), opp.connection, NOW, on_firing=firings.append)
    [firing] = firings
    return firing


def digest_payload(loaded: LoadedWorkflow, firing: Firing) -> dict[str, Any]:
    """The digest task the planner makes of `firing` when its owner has no tasks left today."""
    ctx = Context(
        connection=firing.opportunity.connection,
        now=NOW,
        today=NOW.date(),
        max_tasks_per_owner_per_day=0,
        episodes={},
        tasks_today=Counter(),
        other_flags={},
        flag_state={},
        flag_tokens=set(),
        records=lambda keys: {},
        row_states=lambda keys: {},
    )
    record, _ = plan_writes(loaded, [firing], ctx)
    [row] = [r for r in record.rows if r.kind == "task.create"]
    return dict(row.payload)


def assert_plain(subject: str, body: str) -> None:
    assert not CONTROL.search(subject) and len(subject) <= SUBJECT_LIMIT
    assert not BODY_CONTROL.search(body) and len(body) <= BODY_LIMIT


def check_sent(payload: dict[str, Any]) -> None:
    """What both connectors send for a task payload is escaped for its CRM and bounded."""
    write = Write("k1", "task.create", "006A", {"due_date": "2026-11-24", "due_at": 0, **payload})
    sf = FakeSalesforce()
    salesforce_writes.write(sf, SF_MAPPING, "task.create", [write])  # type: ignore[arg-type]
    [record] = sf.sent[0]["records"]
    assert_plain(record["Subject"], record["Description"] or "")
    hs = FakeHubSpot()
    hubspot_writes.write(hs, HS_MAPPING, "task.create", [write])  # type: ignore[arg-type]
    props = hs.sent[0]["inputs"][0]["properties"]
    assert not CONTROL.search(props["hs_task_subject"])
    assert len(props["hs_task_subject"]) <= SUBJECT_LIMIT
    body = props["hs_task_body"]
    assert len(body) <= HTML_LIMIT
    ours = re.sub(r"^<p>|</p>$", "", body.replace("</p><p>", "\n\n")).replace("<br>", "\n")
    assert "<" not in ours and ">" not in ours, body[:200]  # no markup but our <p> and <br>
    text = html.unescape(ours)
    assert not BODY_CONTROL.search(text)
    plain = record["Description"] or ""
    if not text.endswith("…") and not plain.endswith("…"):  # what fits both reads back alike
        assert text == plain


SF_MAPPING = load_mapping(ROOT / "connectors/salesforce.yaml")
HS_MAPPING = load_mapping(ROOT / "connectors/hubspot.yaml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.one_of(NAMES, LONG), owner=NAMES)
@example(name="\x1b]0;pwned\x07<img src=x onerror=alert(1)>\r\nEvil" * 3_000, owner="\x00")
def test_hostile_names_are_escaped_and_bounded_everywhere(name: str, owner: str) -> None:
    """Task texts, the plan table, a digest and both connectors' requests hold no control
    character, no markup of the deal's in HubSpot's HTML, and no more than their limits."""
    loaded = LOADED
    firing = firing_for(loaded, name, owner)
    [task] = firing.actions
    assert task.subject is not None and task.body is not None
    assert_plain(task.subject, task.body)

    summary = PlanSummary("hostile-names", "sf", by_owner=Counter({owner: 1}), render_errors=1)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        print_plan_summary([summary])
    for line in [*firing_lines(firing, header=True), *out.getvalue().splitlines()]:
        assert not CONTROL.search(line) and len(line) <= LINE_LIMIT

    check_sent({"subject": task.subject, "body": task.body, "owner_id": "005A"})
    digest = digest_payload(loaded, firing)
    check_sent(digest)


def _loaded() -> LoadedWorkflow:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return loaded_workflow(Path(tmp))


LOADED = _loaded()

"""`crmsync plan --opportunity`: one synced deal, every rule with fired or not and why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from crmsync.app.explain import explain_opportunity
from crmsync.app.plan import plan
from crmsync.cli import main
from crmsync.model import Opportunity
from crmsync.store import Store
from tests.actions.world import World, config_dict, config_for, write_workflow
from tests.conftest import NOW, make_sandbox

# Rules that do not depend on the clock, so the CLI (which plans at the real now) is exact.
WORKFLOW = """\
name: explain-me
scope:
  pipelines: [New Business]
rules:
  - id: no-next-step
    kind: staleness
    check: no_next_step
    stages: [proposal, negotiation]
    actions:
      task:
        subject: "{{ name }}: add a next step"
  - id: amount-missing
    kind: hygiene
    check: amount_missing
  - id: big-deal
    kind: custom
    condition: amount != null && amount >= 100000.0
    reason: "a {{ amount|money }} deal"
"""
RULES = ("no-next-step", "amount-missing", "big-deal")


@dataclass
class Synced:
    config: Path
    deals: list[Opportunity]


@pytest.fixture
def synced(store: Store, store_url: str, tmp_path: Path) -> Iterator[Synced]:
    """40 Salesforce deals synced into the store, the workflow above, a config file for it."""
    sb = make_sandbox(40)
    try:
        folder = tmp_path / "workflows"
        write_workflow(folder, WORKFLOW, "explain-me.yaml")
        World(sb, store, config_for(sb, store_url, folder)).sync("sf")
        path = tmp_path / "crmsync.yaml"
        path.write_text(yaml.safe_dump(config_dict(sb, store_url, folder)))
        yield Synced(path, list(store.iter_opportunities("sf")))
    finally:
        sb.stop()


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["plan", "-c", str(config), *args], prog_name="crmsync")
    return result.exit_code, result.stdout, result.stderr


def rule_lines(out: str) -> dict[str, str]:
    """Each rule's verdict line of the table, by rule id."""
    found = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  FIRED") or line.startswith("  not fired"):
            rule = words[1] if words[0] == "FIRED" else words[2]
            found[rule] = line
    return found


def test_a_firing_deal_shows_every_rule_with_its_reason_and_values(synced: Synced) -> None:
    """In scope, no next step in negotiation or proposal: the rule fires, with its task; the
    other rules say why not, and the custom rule shows the amount it read."""
    opp = next(
        o
        for o in synced.deals
        if o.pipeline == "New Business"
        and not o.is_closed
        and not o.next_step
        and o.stage_canonical in ("proposal", "negotiation")
        and o.amount is not None
    )
    code, out, err = run(synced.config, "--opportunity", opp.native_id)
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{opp.key}  {opp.name!r}")
    assert "[explain-me] in scope" in out
    lines = rule_lines(out)
    assert set(lines) == set(RULES)
    assert (
        lines["no-next-step"] == "  FIRED     no-next-step (staleness no_next_step): no next step"
    )
    assert f'-> task for the owner: "{opp.name}: add a next step"' in out
    assert lines["amount-missing"].endswith("not fired amount-missing (hygiene amount_missing): "
                                            "false: the amount is filled in")  # fmt: skip
    big = opp.amount >= 100_000
    assert lines["big-deal"].startswith("  FIRED" if big else "  not fired")
    assert f"read: amount={float(opp.amount)}" in out
    if not big:
        assert "false: amount != null && amount >= 100000.0" in lines["big-deal"]


def test_a_guarded_deal_names_the_guard(synced: Synced) -> None:
    """An open deal without a next step in an earlier stage: `stages:` keeps the rule quiet."""
    opp = next(
        o
        for o in synced.deals
        if o.pipeline == "New Business"
        and not o.is_closed
        and not o.next_step
        and o.stage_canonical in ("qualified", "discovery")
    )
    code, out, err = run(synced.config, "--opportunity", opp.key)
    assert code == 0, err
    lines = rule_lines(out)
    assert set(lines) == set(RULES)
    assert lines["no-next-step"].endswith(
        "not fired no-next-step (staleness no_next_step): guard: stages: [proposal, negotiation] "
        f"does not include the deal's stage {opp.stage_canonical}"
    )
    assert f'next_step=null  stage_canonical="{opp.stage_canonical}"' in out
    closed = next(o for o in synced.deals if o.pipeline == "New Business" and o.is_closed)
    code, out, err = run(synced.config, "--opportunity", closed.key)
    assert code == 0, err
    lines = rule_lines(out)
    assert "guard: the deal is closed" in lines["no-next-step"]
    assert "guard: the deal is closed" in lines["amount-missing"]
    assert "guard" not in lines["big-deal"]  # a custom rule looks at closed deals too


def test_an_out_of_scope_deal_says_which_part_of_the_scope(synced: Synced) -> None:
    """A deal of another pipeline: every rule is listed, not fired, out of scope."""
    opp = next(o for o in synced.deals if o.pipeline not in ("New Business", None))
    code, out, err = run(synced.config, "--opportunity", opp.key)
    assert code == 0, err
    assert (
        "[explain-me] out of scope: scope.pipelines [New Business] does not include the "
        f"deal's pipeline {opp.pipeline!r}" in out
    )
    lines = rule_lines(out)
    assert set(lines) == set(RULES)
    assert all(
        "not fired" in line and "out of the workflow's scope" in line for line in lines.values()
    )
    code, out, err = run(synced.config, "--opportunity", opp.key, "--format", "json")
    assert code == 0, err
    (doc,) = [json.loads(line) for line in out.splitlines()]
    assert doc["in_scope"] is False and [r["rule"] for r in doc["rules"]] == list(RULES)
    assert not any(r["fired"] for r in doc["rules"])


def test_name_lookup_unknown_and_ambiguous(synced: Synced) -> None:
    """A unique name finds its deal (any case); a shared one lists the deals and exits 2; an
    unknown id is one line and exit 2."""
    names = [o.name for o in synced.deals]
    unique = next(o for o in synced.deals if names.count(o.name) == 1)
    code, out, err = run(synced.config, "--opportunity", unique.name.upper())
    assert code == 0, err
    assert out.startswith(unique.key)
    shared = next(o.name for o in synced.deals if names.count(o.name) > 1)
    code, out, err = run(synced.config, "--opportunity", shared)
    assert code == 2 and out == ""
    *listed, last = err.splitlines()
    assert sorted(line.split()[0] for line in listed) == sorted(
        o.key for o in synced.deals if o.name == shared
    )
    assert last == (
        f"crmsync: error: 2 opportunities are named {shared!r}; pass one's id "
        "(connection:id as listed) to --opportunity"
    )
    code, out, err = run(synced.config, "--opportunity", "006NOPE")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "crmsync: error: no opportunity '006NOPE' in the store (give its CRM id, connection:id, "
        "or its exact name; `crmsync sync` first if it is new)"
    ]


# Every kind of rule, most of them on the clock: for the agreement with the plan.
EVERY_KIND = """\
name: every-kind
scope:
  condition: amount == null || amount > 5000.0
rules:
  - {id: idle, kind: staleness, check: no_activity, days: 10}
  - {id: stuck, kind: staleness, check: stuck_in_stage, days: 20, stages: [discovery, proposal]}
  - {id: usual, kind: staleness, check: stuck_in_stage, percentile: 60}
  - {id: past, kind: staleness, check: close_date_past, days: 3}
  - {id: pushed, kind: staleness, check: close_date_pushed, times: 2}
  - {id: slipped, kind: staleness, check: close_date_slipped, days: 30}
  - {id: stale-step, kind: staleness, check: next_step_stale, days: 15}
  - {id: odd-amount, kind: hygiene, check: amount_implausible, min: 5000, max: 200000}
  - {id: odd-probability, kind: hygiene, check: probability_mismatch, tolerance: 10}
  - {id: won-no-amount, kind: hygiene, check: closed_won_without_amount}
  - {id: no-owner, kind: hygiene, check: owner_missing}
  - {id: inactive, kind: hygiene, check: owner_inactive}
  - {id: meddic, kind: stage_gate, preset: meddic, fire_on_skipped_stages: true}
  - id: late-big
    kind: custom
    condition: days_in_stage != null && days_in_stage > 30.0 && is_closed == false
"""


def test_explanations_agree_with_the_plan(synced: Synced) -> None:
    """Over every synced deal and every kind of rule, the rules an explanation says fire are
    the plan's firings, and every rule that does not fire says why."""
    write_workflow(synced.config.parent / "workflows", EVERY_KIND, "every-kind.yaml")
    planned: set[tuple[str, str]] = set()
    plan(synced.config, connections=["sf"], now=NOW,
         on_firing=lambda f: planned.add((f.opportunity.key, f.rule_id)))  # fmt: skip
    explained = set()
    for opp in synced.deals:
        _, explanations = explain_opportunity(synced.config, opp.key, now=NOW)
        for explanation in explanations:
            explained |= {(opp.key, r.rule) for r in explanation.rules if r.fired}
            assert all(r.why for r in explanation.rules)
    assert {rule for _, rule in planned} >= {"idle", "meddic", "no-next-step", "late-big"}
    assert explained == planned

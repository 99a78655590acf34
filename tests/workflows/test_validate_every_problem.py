"""`crmsync validate` reports every problem of every file (one line each, in file order), checks
the text a condition compares with a stage, and prints counts and paths in plain form."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmsync.cli import main
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.workflows.cel_literals import Compared, compared_literals
from crmsync.workflows.load_checks import ENUM_FIELDS, check_literals
from tests.workflows.test_broken_workflows import SANDBOX_CONFIG, sandbox_env

__all__ = ["sandbox_env"]  # the fixture, shared with the broken-workflow corpus

SEVERAL = """\
name: several
mod: shadow
rules:
  - id: big
    kind: custom
    condition: amount > 10000.0 && stage_canonical == "Negotiation"
    reason: "big {{ amount | moeny }}"
  - id: typo
    kind: custom
    condition: amont > 1.0
    actions:
      task:
        subject: "x {{ nme }}"
"""

MEANING = """\
name: meaning
schedule:
  cron: "0 7 * * mon-fry"
rules:
  - id: late
    kind: custom
    condition: stage_canonical in ["negotiation", "Proposl"]
  - id: stale
    kind: staleness
    check: no_activity
    days: 14
    actions:
      task:
        subject: "{{ name | xyzzy }}"
"""

GOOD = """\
name: good
rules:
  - id: late
    kind: custom
    condition: stage_canonical == "negotiation" && "proposal" != stage_canonical
examples:
  - name: a deal in negotiation
    now: 2026-11-20T09:00:00Z
    opportunity: {stage_canonical: negotiation}
    fires: [late]
"""


def run(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    """`crmsync <args>` in-process, stdout and stderr apart."""
    return CliRunner(env=env).invoke(main, args)


def test_every_problem_of_every_file_is_one_line(tmp_path: Path) -> None:
    """Shape and meaning mistakes of two files are all reported, in file order, exit 2; the
    good file beside them is still reported ok."""
    several, meaning, good = (tmp_path / n for n in ("a.yaml", "b.yaml", "c.yaml"))
    several.write_text(SEVERAL, encoding="utf-8")
    meaning.write_text(MEANING, encoding="utf-8")
    good.write_text(GOOD, encoding="utf-8")

    result = run(["validate", str(tmp_path)])

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    problems = [line.removeprefix("crmsync: error: ") for line in result.stderr.splitlines()]
    assert [p.split(": ", 2)[:2] for p in problems] == [
        [f"{several}:2:1", "unknown field 'mod' (did you mean 'mode'?)"],
        [f"{several}:6:55", "rules[0].condition"],
        [f"{several}:7:14", "rules[0].reason"],
        [f"{several}:10:16", "rules[1].condition"],
        [f"{several}:13:24", "rules[1].actions.task.subject"],
        [f"{meaning}:3:9", "schedule.cron"],
        [f"{meaning}:7:51", "rules[0].condition"],
        [f"{meaning}:14:19", "rules[1].actions.task.subject"],
    ]
    assert "unknown filter 'moeny' (did you mean 'money'?)" in problems[2]
    assert "unknown field 'amont' (did you mean 'amount'?)" in problems[3]
    assert "unknown variable 'nme' (did you mean 'name'?)" in problems[4]
    assert "not acceptable" not in problems[5]
    assert "'fry' is not a day (did you mean 'fri'?)" in problems[5]
    assert "'Proposl'" in problems[6] and "(did you mean 'proposal'?)" in problems[6]
    assert "(available: date, days, money; and Jinja's abs," in problems[7]
    assert len(result.stdout.splitlines()) == 1  # no note: the run failed
    assert result.stdout.startswith(f"ok: {good} (workflow good: 1 rule, 1 example")


def test_other_commands_keep_one_line(tmp_path: Path) -> None:
    """Elsewhere (`crmsync test`) the first problem is shown with a count of the others."""
    (tmp_path / "a.yaml").write_text(SEVERAL, encoding="utf-8")

    result = run(["test", str(tmp_path)])

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"crmsync: error: {tmp_path / 'a.yaml'}:2:1: unknown field 'mod' (did you mean 'mode'?)"
        " (and 4 more problems)"
    ]


def test_counts_in_words_and_paths_without_dot_dot(tmp_path: Path) -> None:
    """`1 rule, 1 example` (not `1 rules`), and a path given with `..` printed without it."""
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "good.yaml").write_text(GOOD, encoding="utf-8")
    roundabout = tmp_path / "wf" / ".." / "wf" / "good.yaml"

    result = run(["validate", str(roundabout)])

    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"ok: {tmp_path / 'wf' / 'good.yaml'} (workflow good: 1 rule, 1 ")
    assert "1 rules" not in first and "1 examples" not in first and ".." not in first
    missing = run(["validate", str(tmp_path / "wf" / ".." / "nowhere.yaml")])
    assert missing.exit_code == 2
    assert (
        missing.stderr == f"crmsync: error: {tmp_path / 'nowhere.yaml'}: no such file or folder\n"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('stage_canonical == "Negotiation"', [("stage_canonical", "Negotiation", 19)]),
        ('"Negotiation" != stage', [("stage", "Negotiation", 0)]),
        ('stage in ["a", "b"]', [("stage", "a", 10), ("stage", "b", 15)]),
        ('"x" in [stage_canonical, "y"]', [("stage_canonical", "x", 0)]),
        ("stage_canonical == 'negotiation'", [("stage_canonical", "negotiation", 19)]),
        ('name == "Negotiation" || custom.stage == "q"', []),  # not enumerated fields
        ('stage.startsWith("Neg")', []),  # not a comparison
        ('stage == "a\\tb"', []),  # escapes are left to the CRM: not checked
    ],
)
def test_compared_literals(source: str, expected: list[tuple[str, str, int]]) -> None:
    """The texts compared with a field of few values are found with their offsets."""
    assert compared_literals(source, ENUM_FIELDS) == [Compared(*e) for e in expected]


def _mapping(stage_source: str, stages: dict[str, str]) -> CrmMapping:
    crm = "hubspot" if stage_source.startswith("@") else "salesforce"
    return CrmMapping.model_validate(
        {
            "crm": crm,
            "object": "Opportunity" if crm == "salesforce" else "deals",
            "fields": {"name": "Name", "modified_at": "LastModifiedDate", "stage": stage_source},
            "stages": stages,
        }
    )


def test_native_stage_checked_only_where_the_mapping_knows_it() -> None:
    """`stage` is checked against a mapping's native stages; a connection whose stage is the
    CRM's label (HubSpot's `@stage.label`) is not checked, since only the CRM knows those."""
    sf = _mapping("StageName", {"Negotiation/Review": "negotiation"})
    hs = _mapping("@stage.label", {"contractsent": "negotiation"})
    source = 'stage == "Negotiation" || stage == "Negotiation/Review"'

    found = check_literals(source, {"sf": sf})
    assert [offset for offset, _ in found] == [9]
    assert "(did you mean 'Negotiation/Review'?; for the canonical stage compare " in found[0][1]
    assert check_literals(source, {"hs": hs}) == []
    assert check_literals(source, {"sf": sf, "hs": hs}) == []
    assert check_literals(source, None) == []  # no config: native stages unknown


def test_native_stage_with_sandbox_config(
    sandbox_env: dict[str, str | None], tmp_path: Path
) -> None:
    """With `--config`, a real Salesforce stage passes and a made-up one fails at its column."""
    path = tmp_path / "native.yaml"
    path.write_text(
        "name: native\nscope:\n  connections: [sandbox-sf]\nrules:\n  - id: r\n"
        '    kind: custom\n    condition: stage in ["Closed Won", "Closed Wno"]\n',
        encoding="utf-8",
    )

    result = run(["validate", str(path), "--config", str(SANDBOX_CONFIG)], sandbox_env)

    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"crmsync: error: {path}:7:40: rules[0].condition: stage is compared with "
        "'Closed Wno', which is not one of the stages sandbox-sf's mapping lists: Prospecting, "
        "Qualification, Needs Analysis, Value Proposition, Id. Decision Makers, Perception "
        "Analysis, Proposal/Price Quote, Negotiation/Review, Closed Won, Closed Lost "
        "(did you mean 'Closed Won'?)"
    ]


def test_plan_summary_counts_in_words() -> None:
    """The plan summary says `1 opportunity`, `1 rule firing` and `1 firing set aside`."""
    from collections import Counter
    from types import SimpleNamespace

    from crmsync.cli.format import print_plan_summary

    summary = SimpleNamespace(
        workflow="w",
        connection="c",
        evaluated=1,
        in_scope=1,
        opportunities_fired=1,
        firings=1,
        by_rule=Counter({"r": 1}),
        by_owner=Counter(),
        render_errors=1,
    )
    runner = CliRunner()

    import click

    @click.command()
    def show() -> None:
        print_plan_summary([summary])

    out = runner.invoke(show, []).output

    assert "w on c: 1 of 1 opportunity in scope, 1 with findings, 1 rule firing\n" in out
    assert "  1 firing set aside: " in out


KIND_TYPO = """\
name: kind-typo
rules:
  - id: stale
    kind: stalenes
    check: no_activity
    dayz: 14
    actions:
      task:
        subject: "x"
        priorty: high
"""


def test_a_kind_typo_does_not_hide_the_rule_s_other_mistakes(tmp_path: Path) -> None:
    """The rule is read again as the closest kind, so its other mistakes are listed too (a
    wrong `kind` alone was reported, and the next run found the rest)."""
    path = tmp_path / "k.yaml"
    path.write_text(KIND_TYPO, encoding="utf-8")
    result = run(["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"crmsync: error: {path}:4:11: rules[0].kind: must be one of: stage_gate, staleness, "
        "hygiene, custom, not 'stalenes' (did you mean 'staleness'?)",
        f"crmsync: error: {path}:6:5: rules[0]: unknown field 'dayz' (did you mean 'days'?)",
        f"crmsync: error: {path}:10:9: rules[0].actions.task: unknown field 'priorty' "
        "(did you mean 'priority'?)",
    ]

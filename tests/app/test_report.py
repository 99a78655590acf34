"""build_report over a sandbox-synced store: every section, the weighted pipeline equal to a
direct SQL sum, the filters, the quota file, and an empty store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmsync.app.report import ReportOptions, build_report
from crmsync.config import Config
from crmsync.errors import InvalidInput
from crmsync.model.owners import OwnerEntry
from crmsync.report.document import Chart, ReportDoc, Table
from crmsync.report.weeks import DayGroup, week_figures, week_from_groups
from crmsync.sandbox import Sandbox
from crmsync.store import Store
from crmsync.store.owners import save_owners
from crmsync.store.report_reads import findings_known_since, snapshot_groups
from crmsync.store.snapshots import backfill, read_as_of, write_day
from tests.actions.world import World, config_for, write_workflow
from tests.conftest import NOW

TODAY = NOW.date()


@dataclass
class Synced:
    """A store synced from both sandbox CRMs, with findings and snapshots, and its config."""

    store: Store
    config: Config


@pytest.fixture
def synced(sandbox: Sandbox, store: Store, store_url: str, tmp_path: Path) -> Iterator[Synced]:
    """Both CRMs synced, one live workflow applied (findings), 120 days backfilled and today's
    snapshot written."""
    folder = tmp_path / "workflows"
    write_workflow(folder)
    world = World(sandbox, store, config_for(sandbox, store_url, folder))
    world.sync()
    world.apply()
    for c in world.config.connections:
        backfill(store, c.name, days=120, today=TODAY)
        write_day(store, c.name, TODAY)
    yield Synced(store, world.config)


def _items(doc: ReportDoc) -> dict[str, Chart | Table]:
    return {item.id: item for s in doc.sections for item in s.items}


def _table(doc: ReportDoc, id: str) -> Table:
    item = _items(doc)[id]
    assert isinstance(item, Table)
    return item


def test_every_section_from_a_synced_store(synced: Synced) -> None:
    """Each section holds its charts and tables with data; the waterfall adds up."""
    doc = build_report(synced.store, synced.config, ReportOptions(), now=NOW)
    assert [s.id for s in doc.sections] == ["pipeline", "movement", "slipped", "aging", "hygiene"]
    assert doc.until == TODAY and doc.since == TODAY - timedelta(weeks=13)
    items = _items(doc)
    for id in (
        "pipeline-by-stage-table",
        "movement-table",
        "pipeline-trend-usd",
        "aging-table",
        "findings-by-rule",
        "hygiene-score",
        "hygiene-trend",
        "stage-velocity",
    ):
        assert id in items, id
    assert len(_table(doc, "pipeline-by-stage-table").rows) >= 4
    currencies = {str(r[0]) for r in _table(doc, "pipeline-by-stage-table").rows}
    trends = [i for i in items.values() if i.id.startswith("pipeline-trend-")]
    assert len(trends) == len(currencies) >= 2  # one chart per currency, none shared
    for trend in trends:
        assert isinstance(trend, Chart) and len(trend.series) == 1
        assert trend.title.endswith(")") and trend.title[-4:-1] in currencies
        assert len(trend.series[0].x) == 14  # 13 weeks back and today
    waterfalls = [i for i in items.values() if isinstance(i, Chart) and i.kind == "waterfall"]
    assert waterfalls
    for chart in waterfalls:
        (series,) = chart.series
        assert sum(series.y[:-1]) == pytest.approx(series.y[-1], abs=0.05)
    rules = _table(doc, "findings-by-rule-table")
    assert rules.rows and all(row[0] == "wb" for row in rules.rows)
    assert any(line.startswith("Amounts per currency: ") for line in doc.scope)
    for text in (*doc.scope, *doc.notes, *(i.note for i in items.values())):
        assert text[:1].isupper(), text
    assert any("no quota file" in n for n in doc.notes)


def test_weighted_pipeline_equals_a_direct_sql_sum(synced: Synced) -> None:
    """The table's weighted amounts per currency add up to SUM(amount*probability/100)."""
    doc = build_report(synced.store, synced.config, ReportOptions(), now=NOW)
    got: dict[str, float] = {}
    stages = 0
    for currency, _stage, _n, _amount, weighted in _table(doc, "pipeline-by-stage-table").rows:
        assert isinstance(currency, str) and isinstance(weighted, float)
        got[currency] = got.get(currency, 0.0) + weighted
        stages += 1
    sql = sa.text(
        "SELECT currency, SUM(amount * probability / 100) FROM pipeline_snapshots "
        "WHERE day = :day GROUP BY currency"
    )
    with synced.store.reading("test") as conn:
        expected = {
            c or "no currency": float(Decimal(str(s or 0)))
            for c, s in conn.execute(sql, {"day": TODAY})
        }
    assert set(got) == set(expected)
    for currency, value in expected.items():
        assert got[currency] == pytest.approx(value, abs=0.005 * stages + 1e-6)


def test_filters_narrow_the_report(synced: Synced) -> None:
    """A connection, an owner or a pipeline narrows every count; unknown names are refused."""
    whole = build_report(synced.store, synced.config, ReportOptions(), now=NOW)
    sf = build_report(synced.store, synced.config, ReportOptions(connections=("sf",)), now=NOW)

    def deals(doc: ReportDoc) -> int:
        return sum(int(r[2] or 0) for r in _table(doc, "pipeline-by-stage-table").rows)

    assert 0 < deals(sf) < deals(whole)
    owner_rows = [
        r
        for r in _table(whole, "hygiene-by-owner").rows
        if r[0] != "No owner" and "(" not in str(r[0])
    ]
    name, n = str(owner_rows[0][0]), int(owner_rows[0][1] or 0)
    mine = build_report(synced.store, synced.config, ReportOptions(owner=name), now=NOW)
    assert deals(mine) == n
    with pytest.raises(InvalidInput, match="--owner nobody"):
        build_report(synced.store, synced.config, ReportOptions(owner="nobody"), now=NOW)
    with pytest.raises(InvalidInput, match="no connection named"):
        build_report(synced.store, synced.config, ReportOptions(connections=("x",)), now=NOW)
    with pytest.raises(InvalidInput, match="--pipeline nope: no deal is in that pipeline"):
        build_report(synced.store, synced.config, ReportOptions(pipeline="nope"), now=NOW)
    pipeline = next(iter(synced.store.iter_opportunities("sf"))).pipeline
    assert pipeline is not None
    one = build_report(synced.store, synced.config, ReportOptions(pipeline=pipeline), now=NOW)
    assert 0 < deals(one) <= deals(whole)


def test_quota_file(synced: Synced, tmp_path: Path) -> None:
    """A quota per owner gives a coverage row; a malformed file is one InvalidInput."""
    doc = build_report(synced.store, synced.config, ReportOptions(), now=NOW)
    owner = next(
        str(r[0])
        for r in _table(doc, "hygiene-by-owner").rows
        if r[0] != "No owner" and "(" not in str(r[0])
    )
    path = tmp_path / "quota.csv"
    path.write_text(
        "owner_or_team,period_start,period_end,amount,currency\n"
        f"{owner},2026-01-01,2027-12-31,1000,USD\n"
    )
    doc = build_report(synced.store, synced.config, ReportOptions(quota_file=path), now=NOW)
    (row,) = _table(doc, "coverage-table").rows
    assert row[0] == owner and row[3] == 1000.0
    assert row[7] == pytest.approx(float(row[6] or 0) / 1000, abs=0.01)
    path.write_text("owner_or_team,period_start,period_end,amount,currency\nx,a,b,c,d\n")
    with pytest.raises(InvalidInput, match=r"quota.csv, line 2, period_start"):
        build_report(synced.store, synced.config, ReportOptions(quota_file=path), now=NOW)


def test_an_empty_store_says_so(
    sandbox: Sandbox, store: Store, store_url: str, tmp_path: Path
) -> None:
    """Before any sync the report builds and says there are no snapshots yet."""
    config = config_for(sandbox, store_url, tmp_path)
    doc = build_report(store, config, ReportOptions(), now=NOW)
    assert "No daily snapshots" in doc.notes[0]
    assert all(not isinstance(i, Chart) or i.series for i in _items(doc).values())


def test_team_filter_and_team_quota(synced: Synced, tmp_path: Path) -> None:
    """A team (from the owner directory) keeps its members' deals; a quota may name a team."""
    open_deals = [o for o in synced.store.iter_opportunities("sf") if not o.is_closed]
    owners = sorted({o.owner_id for o in open_deals if o.owner_id})[:2]
    save_owners(
        synced.store,
        "sf",
        [
            OwnerEntry(owners[0], "Ann Team", "ann@example.com", True, None, ("east",)),
            OwnerEntry(owners[1], "Bob Team", "bob@example.com", True, None, ("west", "east")),
        ],
    )
    east = build_report(synced.store, synced.config, ReportOptions(team="east"), now=NOW)
    west = build_report(synced.store, synced.config, ReportOptions(team="west"), now=NOW)
    by_owner = {str(r[0]): int(r[1] or 0) for r in _table(east, "hygiene-by-owner").rows}
    assert set(by_owner) == {"Ann Team", "Bob Team"}
    assert {str(r[0]) for r in _table(west, "hygiene-by-owner").rows} == {"Bob Team"}
    assert "Team: east" in east.scope
    with pytest.raises(InvalidInput, match="--team north: no owner belongs to that team"):
        build_report(synced.store, synced.config, ReportOptions(team="north"), now=NOW)
    path = tmp_path / "quota.csv"
    path.write_text(
        "owner_or_team,period_start,period_end,amount,currency\n"
        "east,2000-01-01,2100-12-31,100,USD\n"
        "ann@example.com,2000-01-01,2100-12-31,100,USD\n"
        "nobody,2000-01-01,2100-12-31,100,USD\n"
    )
    with pytest.raises(InvalidInput, match=r"line 4, owner_or_team: 'nobody' is no owner"):
        build_report(synced.store, synced.config, ReportOptions(quota_file=path), now=NOW)
    path.write_text("\n".join(path.read_text().splitlines()[:3]) + "\n")
    doc = build_report(synced.store, synced.config, ReportOptions(quota_file=path), now=NOW)
    team_row, ann_row = _table(doc, "coverage-table").rows
    usd = {o.key for o in open_deals if o.currency == "USD"}
    expected_team = sum(
        1 for o in open_deals if o.key in usd and o.owner_id in owners and o.close_date
    )
    assert team_row[5] == expected_team
    assert int(ann_row[5] or 0) <= int(team_row[5] or 0)


def test_grouped_weeks_equal_the_rows(synced: Synced) -> None:
    """Each week's figures from the store's grouped read equal those made from its rows."""
    names = [c.name for c in synced.config.connections]
    window_end = date(2026, 12, 31)
    for day in (TODAY - timedelta(days=60), TODAY - timedelta(days=7), TODAY):
        rows = read_as_of(synced.store, day, names)
        assert rows
        plain = week_figures(rows, window_end)
        grouped = week_from_groups(
            DayGroup(g.owner_id, g.currency, g.in_window, g.deals, g.clean, Decimal(g.amount))
            for g in snapshot_groups(synced.store, day, names, window_end)
        )
        assert grouped.scores == plain.scores
        assert grouped.overall == plain.overall
        assert set(grouped.totals) == set(plain.totals)
        for currency, total in plain.totals.items():
            assert float(grouped.totals[currency]) == pytest.approx(float(total), abs=0.005)


def test_hygiene_scores_only_from_the_day_findings_are_known(synced: Synced) -> None:
    """Backfilled days know no finding: the trend starts at the first day a sync wrote after
    the workflows ran (today here), and a report ending before it shows no score."""
    names = [c.name for c in synced.config.connections]
    assert findings_known_since(synced.store, names) == {n: TODAY for n in names}
    doc = build_report(synced.store, synced.config, ReportOptions(), now=NOW)
    trend = _items(doc)["hygiene-trend"]
    assert isinstance(trend, Chart) and trend.series[0].name == "All owners"
    assert all(s.x == (TODAY.isoformat(),) for s in trend.series)  # no 100 % before today
    assert f"known from {TODAY.isoformat()}" in trend.note
    until = TODAY - timedelta(days=7)
    earlier = build_report(synced.store, synced.config, ReportOptions(until=until), now=NOW)
    items = _items(earlier)
    assert "hygiene-trend" not in items and "hygiene-score" not in items
    table = _table(earlier, "hygiene-by-owner")
    assert table.rows and all(r[2] is None and r[3] is None for r in table.rows)
    assert f"known from {TODAY.isoformat()}" in table.note


def test_findings_unknown_before_any_workflow_ran(
    sandbox: Sandbox, store: Store, store_url: str, tmp_path: Path
) -> None:
    """Days synced before any workflow checked the deals know no finding: no day is known."""
    folder = tmp_path / "workflows"
    write_workflow(folder)
    world = World(sandbox, store, config_for(sandbox, store_url, folder))
    world.sync()
    names = [c.name for c in world.config.connections]
    for name in names:
        write_day(store, name, TODAY)
    assert findings_known_since(store, names) == {}
    doc = build_report(store, world.config, ReportOptions(), now=NOW)
    assert "hygiene-trend" not in _items(doc)
    (hygiene,) = [s for s in doc.sections if s.id == "hygiene"]
    assert "have not yet checked" in hygiene.intro


def test_namesakes_are_told_apart_by_email(synced: Synced) -> None:
    """Two owners of one CRM sharing a name are shown with their emails, not their ids."""
    open_deals = [o for o in synced.store.iter_opportunities("sf") if not o.is_closed]
    first, second = sorted({o.owner_id for o in open_deals if o.owner_id})[:2]
    save_owners(
        synced.store,
        "sf",
        [
            OwnerEntry(first, "Sam Lee", "sam.lee@example.com", True, None, ()),
            OwnerEntry(second, "Sam Lee", "sam.lee2@example.com", True, None, ()),
        ],
    )
    doc = build_report(synced.store, synced.config, ReportOptions(connections=("sf",)), now=NOW)
    shown = {str(r[0]) for r in _table(doc, "hygiene-by-owner").rows}
    assert {"Sam Lee (sam.lee@example.com)", "Sam Lee (sam.lee2@example.com)"} <= shown

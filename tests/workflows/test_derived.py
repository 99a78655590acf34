"""Derived fields from hand-built histories: stages, close dates, ages and stage durations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from crmsync.model import Opportunity
from crmsync.model.records import HistoryRow
from crmsync.workflows.derived import Derived, derive
from crmsync.workflows.percentiles import StageDurations

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = "sf:006A"


def at(days_ago: float) -> datetime:
    """A stamp `days_ago` days before NOW."""
    return NOW - timedelta(days=days_ago)


def opp(**kwargs: Any) -> Opportunity:
    """An opportunity with sensible defaults, created 100 days ago."""
    values: dict[str, Any] = {
        "connection": "sf",
        "native_id": "006A",
        "source": "salesforce",
        "name": "Deal",
        "modified_at": at(1),
        "created_at": at(100),
        "pipeline": "default",
        "stage": "proposal",
        "stage_canonical": "proposal",
    }
    values.update(kwargs)
    return Opportunity(**values)


def row(
    field: str, old: str | None, new: str | None, days_ago: float, origin: str = "crm"
) -> HistoryRow:
    """One history row of the test deal."""
    return HistoryRow(KEY, field, old, new, at(days_ago), origin)


def stages(
    *moves: tuple[str | None, str, float], field: str = "stage_canonical"
) -> list[HistoryRow]:
    """Stage rows from (old, new, days_ago) moves."""
    return [row(field, old, new, ago) for old, new, ago in moves]


def closes(*moves: tuple[str | None, str | None, float]) -> list[HistoryRow]:
    """Close-date rows from (old, new, days_ago) moves."""
    return [row("close_date", old, new, ago) for old, new, ago in moves]


# ---- no history ---------------------------------------------------------------------------


def test_no_history_falls_back_to_the_opportunity() -> None:
    """Without history the CRM's stage_entered_at is used and nothing is counted."""
    d = derive(opp(stage_entered_at=at(12), close_date=date(2026, 12, 31)), [], NOW)
    assert d == Derived(
        days_in_stage=12.0,
        stage_entered_at=at(12),
        days_since_activity=100.0,
        close_date_push_count=0,
        close_date_slip_days=0,
        stage_regressions=0,
        skipped_stages=(),
        next_step_age_days=None,
        weighted_amount=None,
        stage_percentile=None,
    )


def test_no_history_without_crm_stage_date_uses_created_at() -> None:
    """Without history or a CRM stage date the deal is in its stage since creation."""
    d = derive(opp(next_step="Send quote"), [], NOW)
    assert d.stage_entered_at == at(100)
    assert d.days_in_stage == 100.0
    assert d.next_step_age_days == 100.0


def test_no_history_and_no_dates_gives_none() -> None:
    """With neither history nor stamps the ages are unknown."""
    d = derive(opp(created_at=None, next_step="Call"), [], NOW)
    assert d.stage_entered_at is None
    assert d.days_in_stage is None
    assert d.days_since_activity is None
    assert d.next_step_age_days is None


# ---- close dates --------------------------------------------------------------------------


def test_close_date_pushes_counted_and_slip_summed() -> None:
    """Three pushes later are three pushes; their day counts add up."""
    history = closes(
        ("2026-01-31", "2026-02-28", 60),
        ("2026-02-28", "2026-03-31", 40),
        ("2026-03-31", "2026-04-10", 20),
    )
    d = derive(opp(close_date=date(2026, 4, 10)), history, NOW)
    assert d.close_date_push_count == 3
    assert d.close_date_slip_days == 28 + 31 + 10


def test_close_date_pull_in_is_not_a_push() -> None:
    """Moving the close date earlier neither counts nor subtracts slip."""
    history = closes(("2026-03-31", "2026-02-15", 10))
    d = derive(opp(close_date=date(2026, 2, 15)), history, NOW)
    assert d.close_date_push_count == 0
    assert d.close_date_slip_days == 0


def test_close_date_push_pull_in_push() -> None:
    """Push, pull-in, push: two pushes, each measured from the date just before it."""
    history = closes(
        ("2026-01-31", "2026-03-31", 50),
        ("2026-03-31", "2026-02-15", 30),
        ("2026-02-15", "2026-03-31", 10),
    )
    d = derive(opp(close_date=date(2026, 3, 31)), history, NOW)
    assert d.close_date_push_count == 2
    assert d.close_date_slip_days == 59 + 44


def test_first_close_date_set_is_not_a_push() -> None:
    """A close date set where there was none is not a push."""
    history = closes((None, "2026-01-31", 50), ("2026-01-31", "2026-02-10", 20))
    d = derive(opp(close_date=date(2026, 2, 10)), history, NOW)
    assert d.close_date_push_count == 1
    assert d.close_date_slip_days == 10


def test_cleared_close_date_compares_with_the_last_known() -> None:
    """Clearing the date is no move; the next date is compared with the one before the gap."""
    history = closes(
        ("2026-01-31", None, 30),
        (None, "2026-03-02", 20),
    )
    d = derive(opp(close_date=date(2026, 3, 2)), history, NOW)
    assert d.close_date_push_count == 1
    assert d.close_date_slip_days == 30


def test_current_close_date_later_than_history_counts_as_push() -> None:
    """A push the history missed (the opportunity is later than its last row) still counts."""
    history = closes(("2026-01-31", "2026-02-28", 30))
    d = derive(opp(close_date=date(2026, 3, 10)), history, NOW)
    assert d.close_date_push_count == 2
    assert d.close_date_slip_days == 28 + 10


def test_duplicate_and_out_of_order_close_rows_count_once() -> None:
    """CRM and observed rows of the same changes, shuffled, count as the clean history does."""
    clean = closes(
        ("2026-01-31", "2026-02-28", 60),
        ("2026-02-28", "2026-02-20", 40),
        ("2026-02-20", "2026-03-31", 20),
    )
    noisy = [
        row("close_date", "2026-02-20", "2026-03-31", 19.9, "observed"),
        clean[2],
        row("close_date", "2026-01-31", "2026-02-28", 59.5, "observed"),
        clean[0],
        row("close_date", "2026-02-28", "2026-02-28", 50),  # re-statement
        clean[1],
        row("close_date", "2026-02-28", "2026-02-20", 39.9, "observed"),
    ]
    expected = derive(opp(close_date=date(2026, 3, 31)), clean, NOW)
    d = derive(opp(close_date=date(2026, 3, 31)), noisy, NOW)
    assert (d.close_date_push_count, d.close_date_slip_days) == (2, 28 + 39)
    assert d == expected


def test_unreadable_close_date_row_is_skipped() -> None:
    """A close-date value that is no date is ignored rather than failing the evaluation."""
    history = closes(("2026-01-31", "soon", 30), ("soon", "2026-02-10", 20))
    d = derive(opp(close_date=date(2026, 2, 10)), history, NOW)
    assert (d.close_date_push_count, d.close_date_slip_days) == (1, 10)


# ---- stages -------------------------------------------------------------------------------


def test_stage_entered_at_is_start_of_latest_contiguous_run() -> None:
    """A, B, A: the deal entered its stage at the second A, not the first."""
    history = stages(
        ("qualified", "proposal", 50),
        ("proposal", "negotiation", 30),
        ("negotiation", "proposal", 10),
    )
    d = derive(opp(), history, NOW)
    assert d.stage_entered_at == at(10)
    assert d.days_in_stage == pytest.approx(10.0)


def test_stage_duplicates_keep_the_earliest_start() -> None:
    """An observed row repeating the CRM's stage change does not restart the stay."""
    history = [
        row("stage_canonical", "discovery", "proposal", 9.5, "observed"),
        row("stage_canonical", "discovery", "proposal", 10),
        row("stage_canonical", "qualified", "discovery", 20),
    ]
    d = derive(opp(), history, NOW)
    assert d.stage_entered_at == at(10)
    assert d.stage_regressions == 0


def test_crm_stage_entered_at_wins_when_later() -> None:
    """The CRM may know of a stage change the history missed: its later stamp is used."""
    history = stages(("discovery", "proposal", 30))
    assert derive(opp(stage_entered_at=at(5)), history, NOW).stage_entered_at == at(5)
    assert derive(opp(stage_entered_at=at(40)), history, NOW).stage_entered_at == at(30)


def test_history_ending_on_another_stage_uses_its_last_row() -> None:
    """When the history missed the move to the current stage, it came after the last stage row."""
    history = stages(("qualified", "discovery", 30))
    d = derive(opp(stage_canonical="proposal"), history, NOW)
    assert d.stage_entered_at == at(30)
    assert d.skipped_stages == ()


def test_restated_initial_stage_falls_back_to_created_at() -> None:
    """A row that only restates the stage says it began earlier: created_at is used."""
    history = stages(("proposal", "proposal", 30))
    assert derive(opp(), history, NOW).stage_entered_at == at(100)


def test_stage_rows_mapped_through_canonical_of() -> None:
    """Native stage rows are mapped to canonical stages, so two native names can be one run."""
    native = {"Prospecting": "qualified", "Needs Analysis": "discovery", "Value Prop": "discovery"}
    history = stages(
        ("Prospecting", "Needs Analysis", 40),
        ("Needs Analysis", "Value Prop", 20),
        field="stage",
    )
    d = derive(
        opp(stage="Value Prop", stage_canonical=None),
        history,
        NOW,
        canonical_of=lambda s: native.get(s) if s is not None else None,
    )
    assert d.stage_entered_at == at(40)
    assert d.stage_regressions == 0


def test_stage_canonical_rows_preferred_earlier_stage_rows_kept() -> None:
    """stage_canonical rows win; native rows only fill in the time before the first of them."""
    native = {"Prospecting": "qualified", "Closing": "negotiation", "Quote": "proposal"}
    history = [
        row("stage", None, "Prospecting", 90),
        row("stage", "Prospecting", "Quote", 60),  # before any stage_canonical row: kept
        row("stage", "Quote", "Closing", 20, "observed"),
        row("stage_canonical", "proposal", "negotiation", 20, "observed"),
        row("stage", "Closing", "Quote", 5),  # after: ignored, the canonical rows say more
    ]
    d = derive(
        opp(stage="Closing", stage_canonical="negotiation"),
        history,
        NOW,
        canonical_of=lambda s: native.get(s) if s is not None else None,
    )
    assert d.stage_entered_at == at(20)
    assert d.skipped_stages == ("discovery",)
    assert d.stage_regressions == 0


def test_regression_negotiation_to_discovery() -> None:
    """Moving back to a lower open stage is a regression."""
    history = stages(
        ("qualified", "discovery", 60),
        ("discovery", "proposal", 50),
        ("proposal", "negotiation", 40),
        ("negotiation", "discovery", 10),
    )
    d = derive(opp(stage_canonical="discovery"), history, NOW)
    assert d.stage_regressions == 1
    assert d.skipped_stages == ()


def test_reopening_a_closed_deal_is_a_regression() -> None:
    """closed_lost -> proposal reopens the deal: a regression."""
    history = stages(("negotiation", "closed_lost", 30), ("closed_lost", "proposal", 10))
    d = derive(opp(), history, NOW)
    assert d.stage_regressions == 1


def test_closing_is_not_a_regression() -> None:
    """Losing from any stage, or won becoming lost, is not a regression."""
    history = stages(("proposal", "closed_won", 30), ("closed_won", "closed_lost", 10))
    d = derive(opp(stage_canonical="closed_lost", is_closed=True), history, NOW)
    assert d.stage_regressions == 0


def test_regression_the_history_missed_counts() -> None:
    """The current stage ends the path, so a move back the history missed still counts."""
    history = stages(("proposal", "negotiation", 30))
    d = derive(opp(stage_canonical="discovery"), history, NOW)
    assert d.stage_regressions == 1


def test_skipped_stage_detected() -> None:
    """qualified -> proposal skips discovery."""
    history = stages(("qualified", "proposal", 20))
    assert derive(opp(), history, NOW).skipped_stages == ("discovery",)


def test_skipped_stages_to_won_and_lost() -> None:
    """Winning from qualified skips every open stage after it; losing skips nothing."""
    won = stages(("qualified", "closed_won", 20))
    lost = stages(("qualified", "closed_lost", 20))
    closed = {"is_closed": True}
    d = derive(opp(stage_canonical="closed_won", **closed), won, NOW)
    assert d.skipped_stages == ("discovery", "proposal", "negotiation")
    assert derive(opp(stage_canonical="closed_lost", **closed), lost, NOW).skipped_stages == ()


def test_skipped_stage_stays_skipped_after_regression() -> None:
    """A stage jumped over on the way up is skipped even when the deal falls back below it."""
    history = stages(("qualified", "negotiation", 30), ("negotiation", "discovery", 10))
    d = derive(opp(stage_canonical="discovery"), history, NOW)
    assert d.skipped_stages == ("proposal",)
    assert d.stage_regressions == 1


def test_no_skips_when_the_path_is_complete() -> None:
    """Visiting every stage in order skips nothing."""
    history = stages(("qualified", "discovery", 30), ("discovery", "proposal", 10))
    assert derive(opp(), history, NOW).skipped_stages == ()


# ---- activity, next step, amount ------------------------------------------------------------


def test_days_since_activity_with_activity() -> None:
    """The last activity stamp is what idleness is measured from."""
    d = derive(opp(last_activity_at=at(3.5)), [], NOW)
    assert d.days_since_activity == pytest.approx(3.5)


def test_days_since_activity_without_activity_uses_created_at() -> None:
    """A deal that never had an activity has been idle since it was created."""
    assert derive(opp(), [], NOW).days_since_activity == pytest.approx(100.0)


def test_future_stamp_counts_as_zero_days() -> None:
    """A stamp after now (clock skew) gives an age of zero, not a negative one."""
    assert derive(opp(last_activity_at=NOW + timedelta(hours=2)), [], NOW).days_since_activity == 0


def test_next_step_age_from_its_last_change() -> None:
    """next_step age counts from the start of its current value, duplicates ignored."""
    history = [
        row("next_step", None, "Call", 40, "observed"),
        row("next_step", "Call", "Send quote", 15, "observed"),
        row("next_step", "Call", "Send quote", 14),
        row("stage_canonical", "discovery", "proposal", 30),
    ]
    d = derive(opp(next_step="Send quote"), history, NOW)
    assert d.next_step_age_days == pytest.approx(15.0)


def test_next_step_age_none_when_empty() -> None:
    """An empty next step has no age (the no_next_step rule covers it)."""
    history = [row("next_step", "Call", None, 5)]
    assert derive(opp(next_step=None), history, NOW).next_step_age_days is None
    assert derive(opp(next_step=""), [], NOW).next_step_age_days is None


def test_next_step_never_changed_uses_created_at() -> None:
    """A next step with no history rows has been there since the deal was created."""
    history = stages(("discovery", "proposal", 10))
    assert derive(opp(next_step="Demo"), history, NOW).next_step_age_days == pytest.approx(100.0)


def test_weighted_amount() -> None:
    """Amount times probability percent, exact in Decimal."""
    d = derive(opp(amount=Decimal("12000.00"), probability=25.0), [], NOW)
    assert d.weighted_amount == Decimal("3000")
    d = derive(opp(amount=Decimal("1000"), probability=10.1), [], NOW)
    assert d.weighted_amount == Decimal("101")


def test_weighted_amount_none_without_amount_or_probability() -> None:
    """No amount or no probability: no weighted amount."""
    assert derive(opp(probability=50.0), [], NOW).weighted_amount is None
    assert derive(opp(amount=Decimal("100")), [], NOW).weighted_amount is None


# ---- stage durations ------------------------------------------------------------------------


def durations_of(days: range | list[float], pipeline: str = "default") -> StageDurations:
    """StageDurations holding the given stays in `proposal` of `pipeline`."""
    d = StageDurations()
    for n in days:
        d.add(pipeline, "proposal", n)
    return d


def test_percentile_of_known_stays() -> None:
    """With stays of 1..20 days, whole days shorter than the query are counted."""
    d = durations_of(range(1, 21))
    assert d.percentile_of("default", "proposal", 10.0) == pytest.approx(45.0)
    assert d.percentile_of("default", "proposal", 10.9) == pytest.approx(45.0)
    assert d.percentile_of("default", "proposal", 11.0) == pytest.approx(50.0)
    assert d.percentile_of("default", "proposal", 0.5) == 0.0
    assert d.percentile_of("default", "proposal", 500.0) == 100.0


def test_threshold_of_known_stays() -> None:
    """Nearest-rank thresholds over stays of 1..20 days."""
    d = durations_of(range(1, 21))
    assert d.threshold("default", "proposal", 80) == 16.0
    assert d.threshold("default", "proposal", 50) == 10.0
    assert d.threshold("default", "proposal", 100) == 20.0
    assert d.threshold("default", "proposal", 0) == 1.0
    assert d.threshold("default", "proposal", 81) == 17.0


def test_fractional_stays_are_bucketed_by_whole_day() -> None:
    """Stays of 3.2 and 3.9 days fall in the same whole-day bucket."""
    d = durations_of([3.2, 3.9] * 10 + [7.5] * 10)
    assert d.samples("default", "proposal") == 30
    assert d.threshold("default", "proposal", 50) == 3.0
    assert d.percentile_of("default", "proposal", 5.0) == pytest.approx(200 / 3)


def test_min_samples() -> None:
    """Below min_samples there is no percentile and no threshold; at it there are."""
    d = durations_of(range(1, 20))
    assert d.percentile_of("default", "proposal", 10.0) is None
    assert d.threshold("default", "proposal", 80) is None
    d.add("default", "proposal", 20.0)
    assert d.percentile_of("default", "proposal", 10.0) == pytest.approx(45.0)
    assert d.threshold("default", "proposal", 80) == 16.0
    small = StageDurations(min_samples=3)
    for n in (1.0, 2.0, 3.0):
        small.add(None, "qualified", n)
    assert small.threshold(None, "qualified", 50) == 2.0


def test_pipelines_and_stages_are_separate() -> None:
    """Stays in one pipeline or stage do not count for another."""
    d = durations_of(range(1, 21), pipeline="new_business")
    for n in range(100, 120):
        d.add("renewals", "proposal", n)
    assert d.threshold("new_business", "proposal", 50) == 10.0
    assert d.threshold("renewals", "proposal", 50) == 109.0
    assert d.percentile_of("new_business", "discovery", 5.0) is None
    assert d.percentile_of(None, "proposal", 5.0) is None


def test_stays_are_capped() -> None:
    """Stays longer than the cap land in the last bucket; memory stays flat."""
    d = StageDurations(cap_days=365)
    for n in range(20):
        d.add("p", "proposal", 10_000.0 + n)
    assert d.threshold("p", "proposal", 50) == 365.0


def test_threshold_rejects_a_percentile_out_of_range() -> None:
    """Percentiles are 0..100."""
    with pytest.raises(ValueError):
        durations_of(range(1, 21)).threshold("default", "proposal", 150)


def test_add_history_counts_completed_stays_only() -> None:
    """Only stage runs followed by another stage are stays; the current one and the one before
    the first recorded change (its start unknown) are not."""
    history = [
        row("stage_canonical", "qualified", "discovery", 50),
        row("stage_canonical", "qualified", "discovery", 49, "observed"),
        row("stage_canonical", "proposal", "negotiation", 10),
        row("stage_canonical", "discovery", "proposal", 30),
    ]
    d = StageDurations(min_samples=1)
    d.add_history(opp(stage_canonical="negotiation"), history)
    assert d.samples("default", "qualified") == 0
    assert d.samples("default", "discovery") == 1
    assert d.samples("default", "proposal") == 1
    assert d.samples("default", "negotiation") == 0
    assert d.threshold("default", "discovery", 100) == 20.0
    assert d.threshold("default", "proposal", 100) == 20.0
    d.add_history(opp(), [], canonical_of=lambda s: s)
    assert d.samples("default", "proposal") == 1


def test_add_history_first_stage_from_creation_row() -> None:
    """A first row without an old value (Salesforce's creation row) starts a countable stay."""
    history = [row("stage", None, "Prospecting", 40), row("stage", "Prospecting", "Quote", 15)]
    native = {"Prospecting": "qualified", "Quote": "proposal"}
    d = StageDurations(min_samples=1)
    d.add_history(opp(), history, canonical_of=lambda s: native.get(s) if s else None)
    assert d.threshold("default", "qualified", 50) == 25.0


def test_derive_gives_stage_percentile() -> None:
    """derive places days_in_stage among the pipeline's recorded stays of the current stage."""
    durations = durations_of(range(1, 21))
    history = stages(("discovery", "proposal", 15.5))
    d = derive(opp(), history, NOW, durations=durations)
    assert d.stage_percentile == pytest.approx(70.0)
    other = derive(opp(pipeline="renewals"), history, NOW, durations=durations)
    assert other.stage_percentile is None
    assert derive(opp(), history, NOW).stage_percentile is None

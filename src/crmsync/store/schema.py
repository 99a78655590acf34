"""The store's tables as SQLAlchemy Core objects; the migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from crmsync.store.types import ExactDecimal, UTCDateTime

metadata = sa.MetaData()

# Keys sort by code point on both backends (PostgreSQL's default collation would not).
KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _text(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=True)


opportunities = sa.Table(
    "opportunities",
    metadata,
    sa.Column("key", KeyText, primary_key=True),
    sa.Column("connection", sa.Text, nullable=False),
    sa.Column("native_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("modified_at", UTCDateTime, nullable=False),
    _text("account_id"),
    _text("account_name"),
    _text("owner_id"),
    _text("owner_name"),
    _text("owner_email"),
    sa.Column("owner_active", sa.Boolean, nullable=True),
    _text("pipeline"),
    _text("stage"),
    _text("stage_canonical"),
    sa.Column("is_closed", sa.Boolean, nullable=False),
    sa.Column("is_won", sa.Boolean, nullable=False),
    sa.Column("amount", ExactDecimal, nullable=True),
    _text("currency"),
    sa.Column("probability", sa.Float, nullable=True),
    _text("forecast_category"),
    sa.Column("close_date", sa.Date, nullable=True),
    _text("next_step"),
    sa.Column("last_activity_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=True),
    sa.Column("stage_entered_at", UTCDateTime, nullable=True),
    _text("budget"),
    sa.Column("budget_confirmed", sa.Boolean, nullable=True),
    _text("economic_buyer"),
    _text("pain"),
    _text("timeline"),
    _text("metrics"),
    _text("decision_criteria"),
    _text("decision_process"),
    _text("champion"),
    sa.Column("custom", Json, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("synced_at", UTCDateTime, nullable=False),
    # plans stream in key order; it serves lookups by connection alone too (migration 0010)
    sa.Index("ix_opportunities_connection_key", "connection", "key"),
)

field_history = sa.Table(
    "field_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", KeyText, nullable=False),
    sa.Column("field", sa.Text, nullable=False),
    sa.Column("old_value", sa.Text, nullable=True),
    sa.Column("new_value", sa.Text, nullable=True),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
)
# Unique per entry, with a cleared value (NULL) counted as one value, so that re-reading a CRM's
# history never duplicates rows; both backends would otherwise treat NULLs as all distinct.
# It is also the index of every lookup by key, or key and field (migration 0010).
sa.Index(
    "ux_field_history_entry",
    field_history.c.key,
    field_history.c.field,
    field_history.c.changed_at,
    sa.func.coalesce(field_history.c.new_value, ""),
    unique=True,
)

# What each deal's field history says, clock-free (see store.history.summarize): kept by the
# sync beside the history it summarizes, so that a plan reads one row per deal, not its history.
# `version` names the summary's algorithm and the stage mapping it was made with; a row of
# another version is out of date and plans read the history instead.
history_summaries = sa.Table(
    "history_summaries",
    metadata,
    sa.Column("key", KeyText, primary_key=True),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("stage_entered_at", UTCDateTime, nullable=True),
    sa.Column("stage_regressions", sa.Integer, nullable=False),
    sa.Column("skipped_stages", Json, nullable=False),
    sa.Column("close_date_push_count", sa.Integer, nullable=False),
    sa.Column("close_date_slip_days", sa.Integer, nullable=False),
    sa.Column("next_step_changed_at", UTCDateTime, nullable=True),
    sa.Column("stays", Json, nullable=False),
)

sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("connection", sa.Text, primary_key=True),
    sa.Column("object", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("ids_at_value", Json, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection", sa.Text, nullable=False),
    sa.Column("object", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("fetched", sa.Integer, nullable=False),
    sa.Column("upserted", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False),
    sa.Column("set_aside", sa.Integer, nullable=False),
    sa.Column("api_calls", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_seconds", sa.Float, nullable=True),
    sa.Index("ix_sync_runs_connection_started_at", "connection", "started_at"),
)

set_aside = sa.Table(
    "set_aside",
    metadata,
    sa.Column("connection", sa.Text, primary_key=True),
    sa.Column("native_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", Json, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
)

# ---- pipeline review ---------------------------------------------------------------------------
# One row per open deal per connection per day: the deal as it stood at the end of that day (the
# day's last sync wins), or as its field history rebuilds it for the days before crmsync ran
# (store.snapshots). Rows only: a day's origin and size are in pipeline_snapshot_days. On SQLite
# the rows are kept in their primary key (WITHOUT ROWID): no second copy of (connection, day, key).
pipeline_snapshots = sa.Table(
    "pipeline_snapshots",
    metadata,
    sa.Column("connection", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("key", KeyText, primary_key=True),
    _text("pipeline"),
    _text("stage"),
    _text("stage_canonical"),
    sa.Column("amount", ExactDecimal, nullable=True),
    _text("currency"),
    sa.Column("probability", sa.Float, nullable=True),
    _text("forecast_category"),
    sa.Column("close_date", sa.Date, nullable=True),
    _text("owner_id"),
    sa.Column("open_findings", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

# One row per connection and day that has a snapshot, even one of no open deal: which days exist
# (read without scanning the rows), how each was made ("sync" or "backfill"), and when.
pipeline_snapshot_days = sa.Table(
    "pipeline_snapshot_days",
    metadata,
    sa.Column("connection", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("deals", sa.Integer, nullable=False),
    sa.Column("written_at", UTCDateTime, nullable=False),
    # what the connection's findings were when a sync wrote the day (open count, latest opening
    # and resolution): a later sync that changed no deal skips the write while it still holds
    sa.Column("findings", sa.Text, nullable=True),
)

# ---- write-back -------------------------------------------------------------------------------
# One row per (workflow, rule, opportunity): whether the rule is firing there now, since when,
# and what crmsync did about it (the flag it set, the task it created). A new occurrence starts
# each time the rule fires again after being resolved.
episodes = sa.Table(
    "episodes",
    metadata,
    sa.Column("workflow", sa.Text, primary_key=True),
    sa.Column("rule", sa.Text, primary_key=True),
    sa.Column("opp_key", KeyText, primary_key=True),
    sa.Column("connection", sa.Text, nullable=False),
    sa.Column("native_id", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=True),
    sa.Column("state", sa.Text, nullable=False),  # open | resolved
    sa.Column("occurrence", sa.Integer, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("flag_field", sa.Text, nullable=True),
    sa.Column("flag_value", sa.Text, nullable=True),
    sa.Column("task_key", sa.Text, nullable=True),
    sa.Column("reminders", sa.Integer, nullable=False),
    sa.Column("last_task_on", sa.Date, nullable=True),
    # Set when a rep deleted, completed or re-dated the episode's task in the CRM ("deleted",
    # "completed", "moved", "cleared"): crmsync then leaves the task to the rep: no reminders.
    sa.Column("left_to_rep", sa.Text, nullable=True),
    # "waiting": found when the workflow went live, waits for a ramp slot (enroll: ramp);
    # "held": found then, gets no task (enroll: none). None: enrolled like any new finding.
    sa.Column("enroll", sa.Text, nullable=True),
    sa.Column("left_at", UTCDateTime, nullable=True),  # when left_to_rep was noticed
    sa.Index("ix_episodes_workflow_connection_state", "workflow", "connection", "state"),
)

# Intended CRM writes, recorded before anything is sent. `key` is the idempotency key: the same
# intention always gets the same key, and a task carries it into the CRM (an external id field).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),  # execution order within a plan
    sa.Column("connection", sa.Text, nullable=False),
    sa.Column("workflow", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=True),
    sa.Column("opp_key", KeyText, nullable=False),
    sa.Column("native_id", sa.Text, nullable=False),
    sa.Column(
        "kind", sa.Text, nullable=False
    ),  # task.create | task.complete | task.due | flag.write
    sa.Column("payload", Json, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("crm_id", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_outbox_connection_state", "connection", "state"),
)

# The flag values crmsync last wrote (or is about to write) per opportunity and field: a plan
# compares with this, so a rep who removes a flag by hand is not overruled on every cycle.
flag_state = sa.Table(
    "flag_state",
    metadata,
    sa.Column("connection", sa.Text, primary_key=True),
    sa.Column("opp_key", KeyText, primary_key=True),
    sa.Column("field", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Every state an action went through, with the CRM's answer: `crmsync audit` reads this.
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("connection", sa.Text, nullable=False),
    sa.Column("workflow", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=True),
    sa.Column("opp_key", KeyText, nullable=False),
    sa.Column("native_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    # no index on rule or opp_key: no audit query can use one (migration 0013)
    sa.Index("ix_audit_at", "at"),
)

# ---- service -----------------------------------------------------------------------------------
# Who runs the scheduled jobs: one row per lease name, held by one `crmsync run` at a time. A
# holder renews `expires_at` while it lives; another worker takes the row over once it expires.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("renewed_at", UTCDateTime, nullable=False),
)

job_runs = sa.Table(  # the last run of each scheduled job ("workflow:<name>")
    "job_runs",
    metadata,
    sa.Column("job", sa.Text, primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
)

# ---- scale-out (crmsync run on PostgreSQL: several equal Procrastinate workers) ----------------
# A fencing token per unit of work ("sync:<connection>:<object>", "workflow:<name>:<connection>"):
# a job takes the next token when it starts; every cursor move and outbox claim checks, in its
# own transaction, that the token is still the job's (crmsync.store.fences).
fences = sa.Table(
    "fences",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("taken_at", UTCDateTime, nullable=False),
)

# The last scheduled time the tick deferred each unit of work for (crmsync.store.marks).
schedule_marks = sa.Table(
    "schedule_marks",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("due_at", UTCDateTime, nullable=False),
)

# What a CRM org or portal last said of its daily API allowance, shared by every worker, and
# until when jobs on it wait after a stop for quota (crmsync.store.quota).
quota_budgets = sa.Table(
    "quota_budgets",
    metadata,
    sa.Column("org", sa.Text, primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=True),
    sa.Column("allowance", sa.BigInteger, nullable=True),
    sa.Column("observed_at", UTCDateTime, nullable=True),
    sa.Column("blocked_until", UTCDateTime, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
)

# ---- reference data ----------------------------------------------------------------------------
# Each connection's owner directory, as its last sync read it (only connections that route tasks):
# who is active and who their manager is, for routing a task away from an inactive owner.
owners = sa.Table(
    "owners",
    metadata,
    sa.Column("connection", sa.Text, primary_key=True),
    sa.Column("owner_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("manager_id", sa.Text, nullable=True),
    sa.Column("teams", sa.Text, nullable=True),  # team ids joined by ",", the primary first
)

# When each workflow first went live on a connection (its first recorded plan) and how the
# findings it found then were enrolled (none | all | ramp).
go_live = sa.Table(
    "go_live",
    metadata,
    sa.Column("connection", sa.Text, primary_key=True),
    sa.Column("workflow", sa.Text, primary_key=True),
    sa.Column("live_since", UTCDateTime, nullable=False),
    sa.Column("enroll", sa.Text, nullable=False),
)


def owned(name: str | None, type_: str, _parents: object) -> bool:
    """Whether a database object is crmsync's, for Alembic's comparisons: on PostgreSQL the
    store also holds Procrastinate's job queue (migration 0012), which is not in `metadata`."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))

"""A rep's edit in the moment between crmsync's check and its write: Salesforce's conditional
update (If-Unmodified-Since through /composite) refuses the write, and the edit stays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from crmsync.app.factory import build_connector
from crmsync.connectors.base import Writer
from crmsync.model.records import Cursor
from crmsync.store.schema import audit, outbox
from tests.actions.world import World

FIELD = "CRMSync_Flags__c"


class EditAfterCheck:
    """A Salesforce writer whose changed-since check is followed at once by a rep's edit, and
    whose batches are small enough (20) for the conditional path."""

    write_batch_size = 20

    def __init__(self, inner: Writer, edit: Callable[[], None]) -> None:
        self.inner = inner
        self.edit = edit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def changed_since(
        self, cursor: Cursor | None, fields: Sequence[str]
    ) -> dict[str, dict[str, Any]] | None:
        out = self.inner.changed_since(cursor, fields)
        self.edit()
        return out


def test_an_edit_after_the_check_is_kept_by_the_conditional_update(world: World) -> None:
    """The check saw nothing, the rep wrote the flag field a moment later: the flag write for
    that record is answered 412 and skipped (re-planned next cycle), every other record of its
    batch is written, and all of it costs one /composite call per 20 records."""
    target = next(
        o.native_id
        for o in world.store.iter_opportunities("sf")
        if not o.is_closed and not o.next_step and not o.custom.get("flags")
    )

    def rep_edits() -> None:
        world.tick()  # a second later than anything the sync read
        world.sb.salesforce.admin_update("opportunity", target, {FIELD: "rep wrote this"})

    world.sb.salesforce.calls.reset()
    report = world.apply(
        connections=["sf"], writer_for=lambda cfg: EditAfterCheck(build_connector(cfg), rep_edits)
    )
    assert world.flags("sf")[target] == "rep wrote this"
    with world.store.reading("test") as conn:
        rows = [
            r._asdict()
            for r in conn.execute(
                sa.select(outbox).where(outbox.c.connection == "sf", outbox.c.kind == "flag.write")
            )
        ]
    (mine,) = [r for r in rows if r["native_id"] == target]
    assert mine["state"] == "skipped"
    with world.store.reading("test") as conn:
        said = conn.execute(
            sa.select(audit.c.detail).where(audit.c.key == mine["key"], audit.c.state == "skipped")
        ).scalar_one()
    assert "changed in the CRM after crmsync read it" in str(said)
    others = [r for r in rows if r["native_id"] != target]
    assert others and {r["state"] for r in others} == {"confirmed"}
    assert report.total("flagged") == len(others)
    calls = world.calls("sf")
    assert calls["composite"] == -(-len(rows) // 20)
    assert calls.get("collections_update", 0) == 0
    world.cycle(connections=["sf"])
    assert world.flags("sf")[target] == "rep wrote this;nonext"

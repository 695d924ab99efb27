"""Storage on SQLite and PostgreSQL: migrations, repositories, compare-and-set, outbox claims."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Text, cast, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.outbox_rows import outbox_values
from escalation.hazard import HazardState, Tick, decide
from storage.db import _alembic_config, migrate
from storage.models import HazardRow, OutboxStatus
from storage.repositories import to_domain
from storage.uow import UnitOfWorkFactory
from tests.conftest import GROUP, T0


async def _hazard(uow: UnitOfWorkFactory, *, number_hint: str = "") -> int:
    async with uow() as u:
        project_id, number = await u.projects.take_number(GROUP, "邮政南苑小区改造", T0)
        row = HazardRow(
            project_id=project_id,
            number=number,
            chat_id=GROUP,
            report_message_id=100 + number,
            reporter_id=5000,
            reporter_name="巡查员",
            text=f"配重块松动{number_hint}",
            category="起重伤害",
            critical=False,
            state=HazardState.OPEN,
            level=1,
            deadline=T0 + timedelta(minutes=30),
            opened_at=T0,
            repeats=0,
            version=0,
            chain=[
                {"role": "安全员", "deadline_s": 1800, "members": [{"id": 1001}]},
                {"role": "监理", "deadline_s": 1800, "members": [{"id": 1002}]},
            ],
            policy={
                "critical_factor": 0.5,
                "repeat_every_s": 1800,
                "max_repeats": 1,
                "rectify_within_s": 86400,
            },
            ack_reminded=False,
        )
        u.hazards.add(row)
        await u.flush()
        await u.commit()
        return row.id


def _pending(
    hid: int, chat: int, text: str, key: str, *, purpose: str = "dm", recipient: int | None = None
) -> dict[str, Any]:
    """A pending sendMessage for the outbox tests, due at T0."""
    values = outbox_values(
        None, purpose, "sendMessage", chat, text, T0, key=key, recipient=recipient
    )
    return {**values, "hazard_id": hid}


async def test_migration_creates_every_table(db_engine: AsyncEngine) -> None:
    """Alembic's first revision creates all tables and records its version."""
    async with db_engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    expected = {"projects", "people", "hazards", "hazard_events", "evidence", "outbox"}
    assert expected <= tables
    assert "alembic_version" in tables


def _index_names(conn: Connection, table: str) -> set[str]:
    return {str(ix["name"]) for ix in inspect(conn).get_indexes(table)}


async def test_revision_0004_goes_down_and_up_with_the_data_kept(
    db_engine: AsyncEngine, uow: UnitOfWorkFactory
) -> None:
    """Revision 0004 (partial indexes for acknowledgements and sent messages, the hazards'
    (state, deadline) index dropped) downgrades to 0003 and upgrades again; the rows stay, and
    the lookups through those indexes still answer."""
    hazard_id = await _hazard(uow)
    async with uow() as u:
        u.events.append(hazard_id, "acknowledged", T0, actor_id=7, actor_name="王工")
        u.events.append(hazard_id, "escalated", T0, level=2)
        u.outbox.add(outbox_values(None, "dm", "sendMessage", 7, "hi", T0, key="k1"))
        await u.commit()
    async with uow() as u:
        (claimed,) = await u.outbox.claim(T0, timedelta(seconds=30), 1)
        await u.outbox.mark_sent([claimed.id], T0, 555)
        await u.commit()
    async with db_engine.connect() as conn:
        assert "ix_hazard_events_acked" in await conn.run_sync(_index_names, "hazard_events")
        assert "ix_hazards_due" not in await conn.run_sync(_index_names, "hazards")
    async with db_engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0003"))
    async with db_engine.connect() as conn:
        assert "ix_hazard_events_acked" not in await conn.run_sync(_index_names, "hazard_events")
        assert "ix_outbox_sent" in await conn.run_sync(_index_names, "outbox")
        assert "ix_hazards_due" in await conn.run_sync(_index_names, "hazards")
    await migrate(db_engine)
    async with uow() as u:
        acked = await u.events.of_kind_for([hazard_id], "acknowledged")
        assert [e.actor_name for e in acked[hazard_id]] == ["王工"]
        sent = await u.outbox.by_sent_message(7, 555)
        assert sent is not None
        assert sent.text == "hi"
        assert await u.hazards.next_deadline() is not None


async def test_revision_0005_drops_the_outbox_hazard_index_and_keeps_the_rows(
    db_engine: AsyncEngine, uow: UnitOfWorkFactory
) -> None:
    """Revision 0005 drops the outbox's index on hazard_id (no query of the bot uses it); it
    downgrades to 0004 and upgrades again with the outbox rows kept."""
    hazard_id = await _hazard(uow)
    async with uow() as u:
        await u.outbox.add_many([_pending(hazard_id, 7, "hi", "k5")])
        await u.commit()
    async with db_engine.connect() as conn:
        assert "ix_outbox_hazard_id" not in await conn.run_sync(_index_names, "outbox")
    async with db_engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0004"))
    async with db_engine.connect() as conn:
        assert "ix_outbox_hazard_id" in await conn.run_sync(_index_names, "outbox")
    await migrate(db_engine)
    async with db_engine.connect() as conn:
        assert "ix_outbox_hazard_id" not in await conn.run_sync(_index_names, "outbox")
    async with uow() as u:
        assert [r.dedupe_key for r in await u.outbox.for_hazard(hazard_id)] == ["k5"]


def test_the_head_revision_known_to_start_up_is_alembics_head() -> None:
    """storage.db skips Alembic for a database at HEAD_REVISION: it must be the newest one."""
    from alembic.script import ScriptDirectory

    from storage.db import HEAD_REVISION

    cfg = _alembic_config(None)  # type: ignore[arg-type]
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD_REVISION]


async def test_a_database_at_head_is_not_handed_to_alembic(
    db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up on an up-to-date schema reads its version and stops there; one revision
    behind, it upgrades (see the 0004 and 0005 tests)."""
    from alembic import command as alembic_command

    upgrades: list[str] = []
    monkeypatch.setattr(alembic_command, "upgrade", lambda _cfg, rev: upgrades.append(rev))
    await migrate(db_engine)
    assert upgrades == []
    async with db_engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "0004"))
    await migrate(db_engine)
    assert upgrades == ["head"]


async def test_numbers_are_per_project_and_increasing(uow: UnitOfWorkFactory) -> None:
    """#N counts up from 1 within a project."""
    first, second = await _hazard(uow), await _hazard(uow)
    async with uow() as u:
        a, b = await u.hazards.get(first), await u.hazards.get(second)
        assert a is not None
        assert b is not None
        assert (a.number, b.number) == (1, 2)


async def test_numbers_of_several_projects_are_taken_in_one_statement(
    uow: UnitOfWorkFactory, db_engine: AsyncEngine
) -> None:
    """A batch takes runs of #N for projects old and new at once, and the next take goes on."""
    other = GROUP - 1
    await _hazard(uow)  # the project of GROUP exists, its next #N is 2
    statements: list[str] = []
    event.listen(db_engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    async with uow() as u:
        taken = await u.projects.take_numbers({other: ("另一个项目", 2), GROUP: ("邮政", 3)}, T0)
        await u.commit()
    assert [s for s in statements if not s.startswith("BEGIN")] == [statements[-1]]
    assert {chat: first for chat, (_, first) in taken.items()} == {GROUP: 2, other: 1}
    async with uow() as u:
        assert (await u.projects.take_number(other, "另一个项目", T0))[1] == 3
        assert (await u.projects.take_number(GROUP, "邮政", T0))[1] == 5
        assert taken[GROUP][0] == (await u.projects.take_number(GROUP, "邮政", T0))[0]
        assert taken[other][0] != taken[GROUP][0]


async def test_a_nul_character_in_peoples_text_is_dropped_not_fatal(
    uow: UnitOfWorkFactory,
) -> None:
    """PostgreSQL refuses NUL in text; a report, a name and an outbox text with one are stored
    without it, on both databases, through the ORM and through the sweep's bulk inserts."""
    hid = await _hazard(uow, number_hint="\x00了")
    async with uow() as u:
        row = await u.hazards.get(hid)
        assert row is not None
        assert row.text == "配重块松动了"
        await u.people.seen(77, "nul\x00user", "老\x00王", T0)
        await u.outbox.add_many(
            [
                outbox_values(
                    row, "dm", "sendMessage", 77, "a\x00b", T0, key="k1", payload=PAYLOAD
                ),
                # A typed backslash before "u0000" is text, not a NUL: kept as written.
                outbox_values(row, "dm", "sendMessage", 78, TYPED, T0, key="k2"),
            ]
        )
        await u.events.append_many(
            [
                {
                    "hazard_id": hid,
                    "kind": "x",
                    "at": T0,
                    "actor_id": 77,
                    "actor_name": "老\x00王",
                    "detail": {"said": "收\x00到"},
                }
            ]
        )
        await u.commit()
    async with uow() as u:
        person = (await u.people.get_many([77]))[77]
        assert (person.username, person.name) == ("nuluser", "老王")
        sent, typed = await u.outbox.for_hazard(hid)
        assert sent.text == "ab"
        assert typed.text == TYPED
        # Inside JSON, SQLite keeps a NUL and PostgreSQL's bulk insert drops it.
        assert _nul_free(sent.payload) == _nul_free(PAYLOAD)
        [event] = await u.events.of_kind(hid, "x")
        assert event.actor_name == "老王"
        assert _nul_free(event.detail) == {"said": "收到"}


async def test_json_columns_hold_chinese_as_it_is_and_a_lone_surrogate_escaped(
    uow: UnitOfWorkFactory, db_engine: AsyncEngine
) -> None:
    """A chain snapshot is stored as compact UTF-8 (the sweep rewrites the whole row at every
    step), and a lone surrogate, which has no UTF-8, still goes in escaped."""
    hid = await _hazard(uow)
    async with db_engine.connect() as conn:
        stored = (
            await conn.execute(select(cast(HazardRow.chain, Text)).where(HazardRow.id == hid))
        ).scalar_one()
    assert '"role":"安全员"' in stored
    assert "\\u" not in stored
    assert ", " not in stored
    async with uow() as u:
        row = await u.hazards.get(hid)
        assert row is not None
        row.chain = [{"role": "监\ud800理", "deadline_s": 60, "members": [{"id": 1}]}]
        await u.commit()
    async with uow() as u:
        row = await u.hazards.get(hid)
        assert row is not None
        assert to_domain(row).chain.level(1).role == "监\ud800理"


PAYLOAD = {"photo": "file\x00id", "reply_markup": {"inline_keyboard": []}}
TYPED = "路\\u0000口"


def _nul_free(value: object) -> object:
    return json.loads(json.dumps(value).replace("\\u0000", ""))


async def test_datetimes_come_back_aware_utc(uow: UnitOfWorkFactory) -> None:
    """Deadlines read back timezone-aware and equal to what was written, on both databases."""
    hid = await _hazard(uow)
    async with uow() as u:
        row = await u.hazards.get(hid)
        assert row is not None
        assert row.deadline == T0 + timedelta(minutes=30)
        assert row.deadline.tzinfo is not None
        assert await u.hazards.next_deadline() == T0 + timedelta(minutes=30)


async def test_compare_and_set_applies_a_step_once(uow: UnitOfWorkFactory) -> None:
    """Two stale copies of the same row: only the first apply wins."""
    hid = await _hazard(uow)
    now = T0 + timedelta(minutes=31)
    async with uow() as u1:
        r1 = await u1.hazards.get(hid)
        assert r1 is not None
        decision = decide(to_domain(r1), Tick(), now)
        assert await u1.hazards.apply(r1, decision.hazard)
        await u1.commit()
    async with uow() as u2:
        stale = HazardRow(id=hid, version=0)  # what a late, duplicate wake-up still holds
        assert not await u2.hazards.apply(stale, decision.hazard)
        fresh = await u2.hazards.get(hid)
        assert fresh is not None
        assert (fresh.level, fresh.version) == (2, 1)


async def test_a_batch_compare_and_set_applies_only_the_current_versions(
    uow: UnitOfWorkFactory,
) -> None:
    """apply_many in one go: the rows whose version matched move (with a deadline, or with
    none); a stale copy changes nothing and is not in the answer."""
    ids = [await _hazard(uow, number_hint=str(i)) for i in range(3)]
    now = T0 + timedelta(minutes=31)
    async with uow() as u:
        rows = [await u.hazards.get(i) for i in ids]
        first, second, _third = (r for r in rows if r is not None)
        moved = decide(to_domain(first), Tick(), now).hazard
        finished = dataclasses.replace(moved, deadline=None, repeats=1)
        stale = HazardRow(id=ids[2], version=7)
        won = await u.hazards.apply_many([(first, moved), (second, finished), (stale, moved)])
        await u.commit()
    assert won == {ids[0], ids[1]}
    async with uow() as u:
        got = [await u.hazards.get(i) for i in ids]
        assert [(r.level, r.version, r.deadline, r.repeats) for r in got if r is not None] == [
            (2, 1, moved.deadline, 0),
            (2, 1, None, 1),
            (1, 0, T0 + timedelta(minutes=30), 0),
        ]


async def test_due_returns_only_passed_active_deadlines(uow: UnitOfWorkFactory) -> None:
    """The sweep sees open hazards whose deadline passed, not future or finished ones."""
    due = await _hazard(uow)
    done = await _hazard(uow)
    async with uow() as u:
        row = await u.hazards.get(done)
        assert row is not None
        row.state = HazardState.CLOSED
        await u.commit()
    async with uow() as u:
        assert [r.id for r in await u.hazards.due(T0 + timedelta(minutes=31), 10)] == [due]
        assert await u.hazards.due(T0 + timedelta(minutes=29), 10) == []


async def test_the_sweep_takes_a_hazard_while_another_transaction_records_about_it(
    uow: UnitOfWorkFactory,
) -> None:
    """A transaction that writes a row pointing at a hazard (an event, an outbox row) does not
    hide that hazard from the sweep. On PostgreSQL such an insert holds a key-share lock on the
    hazard; the sweep's lock must not conflict with it, or SKIP LOCKED steps over the hazard
    (seen in CI: the dispatcher recording a failed DM made a tick find 8 of 9 due hazards)."""
    hid = await _hazard(uow)

    async def sweep() -> list[int]:
        async with uow() as sweeper:
            due = await sweeper.hazards.due(T0 + timedelta(minutes=31), 10)
            await sweeper.commit()
            return [r.id for r in due]

    async with uow() as writer:
        writer.events.append(hid, "dm_failed", T0, reason="403 test")
        await writer.flush()  # the insert is made and its lock held; not yet committed
        # SQLite has one writer, so there the sweep waits for this commit; PostgreSQL sweeps now.
        sweeping = asyncio.create_task(sweep())
        await asyncio.sleep(0.2)
        await writer.commit()
    assert await sweeping == [hid]


async def test_outbox_claim_is_a_lease(uow: UnitOfWorkFactory) -> None:
    """A claimed row is not claimed again until its lease expires; a sent row never again."""
    hid = await _hazard(uow)
    async with uow() as u:
        u.outbox.add(_pending(hid, 1002, "#1", "k1", recipient=1002))
        await u.commit()
    lease = timedelta(seconds=30)
    async with uow() as u:
        assert len(await u.outbox.claim(T0, lease, 10)) == 1
        await u.commit()
    async with uow() as u:
        assert await u.outbox.claim(T0 + timedelta(seconds=10), lease, 10) == []
        again = await u.outbox.claim(T0 + timedelta(seconds=31), lease, 10)
        assert len(again) == 1
        again[0].status = OutboxStatus.SENT
        await u.commit()
    async with uow() as u:
        assert await u.outbox.claim(T0 + timedelta(hours=1), lease, 10) == []


async def _pending_in(uow: UnitOfWorkFactory, chats: list[int]) -> None:
    """A pending row for each chat in turn, its text m0, m1, ...: a notice in a group, a DM."""
    hid = await _hazard(uow)
    async with uow() as u:
        for i, chat in enumerate(chats):
            u.outbox.add(
                _pending(hid, chat, f"m{i}", f"p{i}", purpose="notice" if chat < 0 else "dm")
            )
        await u.commit()


async def test_a_claim_and_a_take_of_numbers_are_one_statement_whatever_their_size(
    uow: UnitOfWorkFactory, db_engine: AsyncEngine
) -> None:
    """A claim skipping one chat or three, and numbers taken for one project or two, do what
    they say; on PostgreSQL each runs one statement text whatever its size: a text is prepared
    on every connection, and a text per size was prepared again and again
    (benchmarks/ingest.py). SQLite prepares nothing, so there its texts may vary."""
    await _pending_in(uow, [-100, -200, 1002, -300])
    statements: list[str] = []
    event.listen(db_engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    lease = timedelta(seconds=30)
    async with uow() as u:
        assert [r.chat_id for r in await u.outbox.claim(T0, lease, 1, skip_chats=[1002])] == [
            -100
        ]
        skip = [-200, 1002, -100]
        assert [r.chat_id for r in await u.outbox.claim(T0, lease, 5, skip_chats=skip)] == [-300]
        # The project of GROUP has #1 (the hazard of the pending rows).
        assert (await u.projects.take_numbers({GROUP: ("邮政", 1)}, T0))[GROUP][1] == 2
        taken = await u.projects.take_numbers({GROUP: ("邮政", 2), GROUP - 1: ("另一个", 1)}, T0)
        assert {chat: first for chat, (_, first) in taken.items()} == {GROUP: 3, GROUP - 1: 1}
    if db_engine.dialect.name == "postgresql":
        claims = [s for s in statements if s.lstrip().startswith("UPDATE outbox")]
        takes = [s for s in statements if "INSERT INTO projects" in s]
        assert len(claims) == len(takes) == 2
        assert claims[0] == claims[1]
        assert takes[0] == takes[1]


async def test_outbox_claims_private_chats_first_and_can_skip_or_pick_a_chat(
    uow: UnitOfWorkFactory,
) -> None:
    """DMs (positive chat ids) before group messages written earlier; chats being sent to can
    be left out, and one chat's rows taken alone, in order."""
    await _pending_in(uow, [-100, -200, 1002, -100, 1003])
    lease = timedelta(seconds=30)
    async with uow() as u:
        first = await u.outbox.claim(T0, lease, 3, skip_chats={-200})
        assert [r.text for r in first] == ["m2", "m4", "m0"]
        assert [r.text for r in await u.outbox.claim(T0, lease, 10, chat_id=-100)] == ["m3"]
        assert [r.text for r in await u.outbox.claim(T0, lease, 10)] == ["m1"]
        await u.commit()


async def test_outbox_claims_dms_and_groups_up_to_a_limit_each_in_one_statement(
    uow: UnitOfWorkFactory,
) -> None:
    """With `groups_limit`, DMs up to `limit` and groups up to `groups_limit`, each in sending
    order: a full kind of one does not crowd out the other, and skipped chats stay out."""
    await _pending_in(uow, [-100, 1002, -200, 1003, -300, 1004, 1005, -400])
    lease = timedelta(seconds=30)
    async with uow() as u:
        first = await u.outbox.claim(T0, lease, 2, groups_limit=3, skip_chats=[1002, -200])
        assert [r.text for r in first] == ["m3", "m5", "m0", "m4", "m7"]
        assert await u.outbox.claim(T0, lease, 0, groups_limit=0) == []
        rest = await u.outbox.claim(T0, lease, 5, groups_limit=0)
        assert [r.text for r in rest] == ["m1", "m6"]
        assert [r.text for r in await u.outbox.claim(T0, lease, 0, groups_limit=9)] == ["m2"]
        await u.commit()


async def test_a_one_statement_unit_opens_no_transaction_on_postgresql(
    uow: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox's lease (one UPDATE ... RETURNING, atomic by itself) runs without BEGIN and
    COMMIT on PostgreSQL, two round trips of three, and what it wrote is there for the next
    unit. On SQLite it is a transaction."""
    import asyncpg

    hid = await _hazard(uow)
    async with uow() as u:
        u.outbox.add(_pending(hid, 1002, "#1", "k1", recipient=1002))
        await u.commit()
    began: list[object] = []
    original = asyncpg.transaction.Transaction.start

    async def start(self: asyncpg.transaction.Transaction) -> None:
        began.append(self)
        await original(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "start", start)
    lease = timedelta(seconds=30)
    async with uow.one_statement() as u:
        assert len(await u.outbox.claim(T0, lease, 10)) == 1
        await u.commit()
    assert began == []
    async with uow() as u:
        assert await u.outbox.claim(T0, lease, 10) == []  # leased: the lease was kept
        await u.commit()
    postgres = uow.sessions.kw["bind"].dialect.name == "postgresql"
    assert len(began) == (1 if postgres else 0)  # an ordinary unit is a transaction


async def _card_sent(uow: UnitOfWorkFactory, hid: int, message_id: int) -> int:
    """A card for `hid` through the outbox: leased, then marked sent as message `message_id`;
    returns its outbox row's id."""
    async with uow() as u:
        u.outbox.add(_pending(hid, GROUP, f"card {message_id}", f"card:{message_id}", purpose="card"))
        await u.commit()
    async with uow.one_statement() as u:
        (card,) = await u.outbox.claim(T0, timedelta(seconds=30), 1, chat_id=GROUP)
        await u.commit()
    async with uow.one_statement() as u:
        await u.outbox.mark_sent([card.id], T0, message_id, cards=[hid])
        await u.commit()
    return card.id


async def test_a_cards_mark_keeps_its_message_on_the_hazard_in_one_statement(
    uow: UnitOfWorkFactory, db_engine: AsyncEngine
) -> None:
    """Marking a card sent also gives its hazard the card's message id (a 收到 replying to the
    card finds the hazard by it). On PostgreSQL both are one statement, outside any
    transaction; on SQLite two, in the unit's transaction. Without a message id (a reaction)
    nothing of the hazard changes."""
    hid, other = await _hazard(uow), await _hazard(uow)
    statements: list[str] = []
    event.listen(db_engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    card_id = await _card_sent(uow, hid, 900)
    marks = [s for s in statements if s.lstrip().startswith(("UPDATE", "WITH"))][1:]
    postgres = db_engine.dialect.name == "postgresql"
    assert len(marks) == (1 if postgres else 2)
    async with uow() as u:
        assert [h.card_message_id for h in await u.hazards.all_active()] == [900, None]
        (card,) = await u.outbox.get_many([card_id])
        assert (card.status, card.sent_message_id) == (OutboxStatus.SENT, 900)
        await u.outbox.mark_sent([card.id], T0, None, cards=[other])
        await u.commit()
    async with uow() as u:
        assert (await u.hazards.get(other)).card_message_id is None  # type: ignore[union-attr]


async def test_a_lease_is_renewed_only_by_whoever_still_holds_it(uow: UnitOfWorkFactory) -> None:
    """renew_many extends the rows whose lease is the one given; a row claimed again by
    someone else after our lease ran out is theirs, and a sent row is nobody's."""
    hid = await _hazard(uow)
    async with uow() as u:
        for i in range(3):
            u.outbox.add(_pending(hid, 2000 + i, f"r{i}", f"r{i}", recipient=2000 + i))
        await u.commit()
    lease = timedelta(seconds=30)
    async with uow() as u:
        mine = await u.outbox.claim(T0, lease, 10)
        await u.commit()
    held = [(r.id, T0 + lease) for r in mine]
    async with uow() as u:
        taken = await u.outbox.claim(T0 + timedelta(seconds=31), lease, 1)  # ours ran out
        sent = await u.outbox.get(mine[2].id)
        assert sent is not None
        sent.status = OutboxStatus.SENT
        await u.commit()
    async with uow() as u:
        renewed = await u.outbox.renew_many(held, T0 + timedelta(seconds=60))
        await u.commit()
    assert [r.id for r in taken] == [mine[0].id]
    assert renewed == {mine[1].id}


async def test_photo_reuse_is_found_anywhere(uow: UnitOfWorkFactory) -> None:
    """A file_unique_id used on any hazard is reported as used."""
    from storage.models import EvidenceRow

    hid = await _hazard(uow)
    async with uow() as u:
        u.evidence.add(
            EvidenceRow(
                hazard_id=hid,
                kind="photo",
                user_id=1001,
                chat_id=GROUP,
                message_id=5,
                file_unique_id="AgADxyz",
                accepted=True,
                at=T0,
            )
        )
        await u.commit()
    async with uow() as u:
        assert await u.evidence.photo_used("AgADxyz")
        assert not await u.evidence.photo_used("AgADother")


async def test_people_started_and_unreachable(uow: UnitOfWorkFactory) -> None:
    """/start marks a person reachable; a 403 marks them unreachable with the reason."""
    async with uow() as u:
        await u.people.mark_started(1002, "zhang", "张工", T0)
        await u.commit()
    async with uow() as u:
        assert (await u.people.get_many([1002]))[1002].started
        assert await u.people.ids_for_usernames(["ZHANG"]) == {"zhang": 1002}
        await u.people.mark_unreachable(1002, "bot was blocked by the user")
        await u.commit()
    async with uow() as u:
        person = (await u.people.get_many([1002]))[1002]
        assert not person.started
        assert person.unreachable_reason == "bot was blocked by the user"


async def test_held_back_events_and_outbox_rows_are_seen_by_reads_in_order(
    uow: UnitOfWorkFactory,
) -> None:
    """`events.append` and `outbox.add` write at the next read or at commit: a read in the same
    transaction sees them, in the order they were made, before rows written at once after them;
    nothing is written without a commit."""
    hid = await _hazard(uow)
    async with uow() as u:
        u.events.append(hid, "acknowledged", T0, actor_id=7, actor_name="王工")
        await u.events.append_many(
            [
                {
                    "hazard_id": hid,
                    "kind": "escalated",
                    "at": T0,
                    "actor_id": None,
                    "actor_name": None,
                    "detail": {"level": 2},
                }
            ]
        )
        u.events.append(hid, "going", T0, actor_id=8)
        assert [e.kind for e in await u.events.for_hazard(hid)] == [
            "acknowledged",
            "escalated",
            "going",
        ]
        u.outbox.add(_pending(hid, 1002, "#1", "k1"))
        assert await u.outbox.has_key("k1")
        assert [r.dedupe_key for r in await u.outbox.for_hazard(hid)] == ["k1"]
    async with uow() as u:  # the transaction above was never committed
        assert await u.events.for_hazard(hid) == []
        assert not await u.outbox.has_key("k1")
        u.events.append(hid, "acknowledged", T0, actor_id=7)
        u.outbox.add(_pending(hid, 1002, "#1", "k1"))
        await u.commit()
    async with uow() as u:
        assert [e.actor_id for e in await u.events.for_hazard(hid)] == [7]
        assert await u.outbox.has_key("k1")


async def test_seeing_a_person_updates_their_names_and_keeps_their_start(
    uow: UnitOfWorkFactory,
) -> None:
    """`people.seen` is an upsert: a new person is not started; a known one gets the current
    username and name and keeps pressing Start; `mark_started` sets it and clears a refusal."""
    async with uow() as u:
        await u.people.seen(77, "wang", "老王", T0)
        await u.commit()
    async with uow() as u:
        await u.people.mark_unreachable(77, "blocked")
        await u.commit()
    async with uow() as u:
        (before,) = (await u.people.get_many([77])).values()
        assert (before.username, before.name, before.started) == ("wang", "老王", False)
        await u.people.mark_started(77, "wang", "老王", T0)
        await u.commit()
    async with uow() as u:
        (known,) = (await u.people.get_many([77])).values()
        await u.people.seen(77, "wang2", "王工", T0 + timedelta(hours=1))
        assert known.username == "wang2"  # an entity already loaded is kept truthful
        await u.commit()
    async with uow() as u:
        (after,) = (await u.people.get_many([77])).values()
        assert (after.username, after.name, after.started) == ("wang2", "王工", True)
        assert after.unreachable_reason is None
        assert after.last_seen_at == T0 + timedelta(hours=1)
        assert await u.people.ids_for_usernames(["WANG2"]) == {"wang2": 77}


async def test_rows_of_different_times_keep_each_its_own_time_and_their_order(
    uow: UnitOfWorkFactory,
) -> None:
    """Events and outbox rows held together but made at different moments (a batch of 收到)
    are written each with its own time, in the order they were made; rows of one moment (a
    sweep) share it."""
    hid = await _hazard(uow)
    times = [T0 + timedelta(seconds=s) for s in (3, 1, 2)]
    async with uow() as u:
        for n, at in enumerate(times):
            u.events.append(hid, "acknowledged", at, actor_id=n)
            u.outbox.add(
                {
                    **outbox_values(
                        None, "reaction", "setMessageReaction", GROUP, None, at, key=f"r{n}"
                    ),
                    "hazard_id": hid,
                }
            )
        u.events.append(hid, "reminded", T0, actor_id=9)
        await u.commit()
    async with uow() as u:
        events = await u.events.for_hazard(hid)
        assert [(e.actor_id, e.at) for e in events] == [
            (0, times[0]),
            (1, times[1]),
            (2, times[2]),
            (9, T0),
        ]
        rows = await u.outbox.for_hazard(hid)
        assert [(r.dedupe_key, r.not_before, r.created_at) for r in rows] == [
            (f"r{n}", at, at) for n, at in enumerate(times)
        ]
        assert {r.status for r in rows} == {OutboxStatus.PENDING}


async def test_seeing_several_people_records_each_in_one_go(uow: UnitOfWorkFactory) -> None:
    """`people.seen_many` records new and known people alike, as `seen` would one by one: a
    known person keeps their Start, and an entity already loaded is kept truthful."""
    async with uow() as u:
        await u.people.mark_started(77, "wang", "老王", T0)
        await u.commit()
    later = T0 + timedelta(hours=1)
    async with uow() as u:
        (known,) = (await u.people.get_many([77])).values()
        await u.people.seen_many(
            [(77, "wang2", "王工"), (78, None, "李工"), (79, "zhao", "赵")], later
        )
        assert known.username == "wang2"
        await u.commit()
    async with uow() as u:
        people = await u.people.get_many([77, 78, 79])
        assert {
            uid: (p.username, p.name, p.started, p.last_seen_at) for uid, p in people.items()
        } == {
            77: ("wang2", "王工", True, later),
            78: (None, "李工", False, later),
            79: ("zhao", "赵", False, later),
        }
        await u.people.seen_many([], later)  # nothing to record: no statement, no error


async def test_people_seen_are_held_yet_read_in_order_and_kept_only_with_a_commit(
    uow: UnitOfWorkFactory,
) -> None:
    """`people.seen` holds its upsert until the next use of the people or the commit: a read in
    the same transaction finds the person, a person seen twice keeps the last sighting, a
    `mark_started` after a sighting is not undone by it, and nothing stays without a commit."""
    async with uow() as u:
        await u.people.seen(77, "wang", "老王", T0)
        await u.people.seen(77, "wang2", "王工", T0 + timedelta(minutes=1))
        assert await u.people.ids_for_usernames(["wang2"]) == {"wang2": 77}
        await u.people.seen(78, "li", "李工", T0)
    async with uow() as u:  # the transaction above was never committed
        assert await u.people.get_many([77, 78]) == {}
        await u.people.seen(78, "li", "李工", T0)
        await u.people.mark_started(78, "li", "李工", T0)
        await u.people.seen(77, "wang", "老王", T0)
        await u.people.seen(77, "wang2", "王工", T0 + timedelta(minutes=1))
        await u.commit()
    async with uow() as u:
        people = await u.people.get_many([77, 78])
        assert {uid: (p.username, p.name, p.started) for uid, p in people.items()} == {
            77: ("wang2", "王工", False),
            78: ("li", "李工", True),
        }
        assert people[77].last_seen_at == T0 + timedelta(minutes=1)


async def test_a_reminded_hazard_reads_so_at_once_and_keeps_it_only_with_a_commit(
    uow: UnitOfWorkFactory,
) -> None:
    """`hazards.remind` is held like the events: the row says reminded in the transaction that
    wrote the reminder, and the hazard says so afterwards only if that transaction committed."""
    hid = await _hazard(uow)
    async with uow() as u:
        row = await u.hazards.get(hid)
        assert row is not None
        assert not row.ack_reminded
        u.hazards.remind(row)
        assert row.ack_reminded
        assert (await u.hazards.get(hid)) is row
    async with uow() as u:  # the transaction above was never committed
        row = await u.hazards.get(hid)
        assert row is not None
        assert not row.ack_reminded
        u.hazards.remind(row)
        u.events.append(hid, "acknowledged", T0, actor_id=7)
        await u.commit()
    async with uow() as u:
        row = await u.hazards.get(hid)
        assert row is not None
        assert row.ack_reminded
        assert [e.actor_id for e in await u.events.for_hazard(hid)] == [7]


async def test_acknowledged_messages_are_found_written_or_held(uow: UnitOfWorkFactory) -> None:
    """The 收到 recorded for some hazards, by message: those committed before and those held
    in this transaction alike, and no other kind of event or other hazard's."""
    first, second = await _hazard(uow), await _hazard(uow)
    async with uow() as u:
        u.events.append(first, "acknowledged", T0, actor_id=7, message_id=41)
        u.events.append(second, "acknowledged", T0, actor_id=7, message_id=42)
        u.events.append(first, "going", T0, actor_id=8, message_id=43)
        await u.commit()
    async with uow() as u:
        u.events.append(first, "acknowledged", T0, actor_id=9, message_id=44)
        assert await u.events.acknowledged_messages({first}) == {(first, 41), (first, 44)}
        assert await u.events.acknowledged_messages({first, second}) == {
            (first, 41),
            (first, 44),
            (second, 42),
        }
        assert await u.events.acknowledged_messages(set()) == set()
        await u.commit()
    async with uow() as u:
        assert await u.events.acknowledged_messages({first}) == {(first, 41), (first, 44)}


async def test_hazards_are_found_by_their_report_or_card_message_in_one_go(
    uow: UnitOfWorkFactory,
) -> None:
    """`by_messages` finds each pair's hazard by its report or its card, with the 收到 recorded
    for it; a chat of one pair with the message of another finds nothing, and nor does an
    unknown message."""
    first, second = await _hazard(uow), await _hazard(uow)
    await _card_sent(uow, second, 900)
    async with uow() as u:
        u.events.append(second, "acknowledged", T0, actor_id=1001, message_id=901)
        u.events.append(second, "acknowledged", T0, actor_id=1002, message_id=902)
        u.events.append(first, "reported", T0, actor_id=5000, message_id=903)
        await u.commit()
    async with uow() as u:
        rows = {(h.chat_id, h.report_message_id): h.id for h in await u.hazards.all_active()}
        (report_first,) = [key for key, hid in rows.items() if hid == first]
        assert await u.hazards.by_messages(set()) == ({}, set())
        found = await u.hazards.by_messages({report_first, (GROUP, 900), (GROUP, 999)})
        assert {key: row.id for key, row in found.hazards.items()} == {
            report_first: first,
            (GROUP, 900): second,
        }
        assert found.acknowledged == {(second, 901), (second, 902)}
        only = await u.hazards.by_messages({report_first})
        assert {key: row.id for key, row in only.hazards.items()} == {report_first: first}
        assert only.acknowledged == set()
        elsewhere = await u.hazards.by_messages({(GROUP + 1, 900), (GROUP, 999)})
        assert elsewhere == ({}, set())

"""All queries, in the domain's words; repositories never commit, the unit of work does."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import eq, itemgetter
from typing import Any, NamedTuple, TypeVarTuple

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    all_,
    any_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from escalation.chain import ChainSnapshot
from escalation.hazard import ACTIVE_STATES, Hazard, HazardState, Policy
from escalation.workhours import WorkCalendar
from storage.models import (
    Binding,
    ChatMigration,
    EvidenceRow,
    HazardEvent,
    HazardFields,
    HazardRow,
    OutboxRow,
    OutboxStatus,
    Person,
    Project,
    drop_nul,
)

_Columns = TypeVarTuple("_Columns")  # a Select of any columns: entities or a column list


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _skip_locked(session: AsyncSession, stmt: Select[*_Columns]) -> Select[*_Columns]:
    """Row locks that other processes step over; SQLite has one writer at a time anyway.

    FOR NO KEY UPDATE (`key_share`), not FOR UPDATE: we change columns, never keys, and plain
    FOR UPDATE conflicts with the key-share lock that PostgreSQL takes on a row while another
    transaction inserts a row referencing it. SKIP LOCKED then stepped over a due hazard
    whenever its event or outbox row was being written."""
    if _postgres(session):
        return stmt.with_for_update(skip_locked=True, key_share=True)
    return stmt


def _among(
    session: AsyncSession, column: Any, values: Collection[Any], item: Any
) -> ColumnElement[bool]:
    """`column IN values`. On PostgreSQL one array parameter, `= ANY($1)`: the statement
    compiles once, where an IN list renders every value anew (a sweep's batch has hundreds)."""
    if _postgres(session):
        return column == any_(literal(list(values), type_=ARRAY(item)))  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


def policy_to_json(policy: Policy) -> dict[str, Any]:
    return {
        "critical_factor": policy.critical_factor,
        "repeat_every_s": int(policy.repeat_every.total_seconds()),
        "max_repeats": policy.max_repeats,
        "rectify_within_s": int(policy.rectify_within.total_seconds()),
        "calendar": policy.calendar.to_json() if policy.calendar is not None else None,
    }


def policy_from_json(data: dict[str, Any]) -> Policy:
    return Policy(
        critical_factor=float(data["critical_factor"]),
        repeat_every=timedelta(seconds=data["repeat_every_s"]),
        max_repeats=int(data["max_repeats"]),
        rectify_within=timedelta(seconds=data["rectify_within_s"]),
        # Rows written before working hours existed have no calendar: round the clock.
        calendar=WorkCalendar.from_json(data["calendar"]) if data.get("calendar") else None,
    )


def to_domain(row: HazardRow) -> Hazard:
    return Hazard(
        number=row.number,
        state=row.state,
        level=row.level,
        deadline=row.deadline,
        opened_at=row.opened_at,
        critical=row.critical,
        chain=ChainSnapshot.from_json(row.chain),
        policy=policy_from_json(row.policy),
        repeats=row.repeats,
    )


@functools.lru_cache(maxsize=1024)
def _chain_from_text(raw: str) -> ChainSnapshot:
    return ChainSnapshot.from_json(json.loads(raw))


@functools.lru_cache(maxsize=1024)
def _policy_from_text(raw: str) -> Policy:
    return policy_from_json(json.loads(raw))


@dataclass(slots=True)
class DueHazard:
    """A due hazard as the sweep reads it: what its texts need, and the core's view of it.

    Read with Core, not the ORM (building an entity cost more than deciding its step), and the
    chain and policy are parsed once per distinct snapshot: a project's hazards share theirs.
    """

    id: int
    chat_id: int
    number: int
    text: str
    reporter_name: str
    opened_at: datetime
    photo_file_id: str | None
    version: int
    hazard: Hazard | None  # None when the row could not be read: `error` says why
    error: Exception | None = None


_DUE_COLUMNS = (
    HazardRow.id,
    HazardRow.chat_id,
    HazardRow.number,
    HazardRow.text,
    HazardRow.reporter_name,
    HazardRow.opened_at,
    HazardRow.photo_file_id,
    HazardRow.version,
    HazardRow.state,
    HazardRow.level,
    HazardRow.deadline,
    HazardRow.critical,
    HazardRow.repeats,
    # As text, so that equal snapshots are parsed once (see _chain_from_text).
    cast(HazardRow.chain, Text),
    cast(HazardRow.policy, Text),
)


def _due_hazard(r: Any) -> DueHazard:
    due = DueHazard(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], None)
    try:
        due.hazard = Hazard(
            number=r[2],
            state=r[8],
            level=r[9],
            deadline=r[10],
            opened_at=r[5],
            critical=r[11],
            chain=_chain_from_text(r[13]),
            policy=_policy_from_text(r[14]),
            repeats=r[12],
        )
    except Exception as exc:  # a corrupt row fails alone, when its step is rendered
        due.error = exc
    return due


def _rows_json(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as one JSON array of arrays, one element per column, for `jsonb_array_elements`.

    One text parameter: asyncpg encodes an array parameter element by element with an
    isinstance check for each, which cost the catch-up more than PostgreSQL's parsing of the
    JSON does (and PostgreSQL parses on its own core). jsonb, not json: `->>` on json parses
    the row's text again for every column (the outbox insert took 40% longer). Times go in as
    ISO text.
    """
    text = json.dumps(rows := list(rows), ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text:
        # jsonb refuses NUL, as text columns do; people's text can carry it. (A typed
        # backslash before "u0000" also lands here; re-encoding leaves it as it is.)
        text = json.dumps(_without_nul(rows), ensure_ascii=False, separators=(",", ":"))
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return drop_nul(value)
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _timed_events(events: Iterable[dict[str, Any]]) -> str:
    """Events as _EVENTS_TIMED_SQL reads them, each with its own time."""
    return _rows_json((*_EVENT_COLUMNS(e), _iso(e["at"])) for e in events)


def _timed_outbox(rows: Iterable[dict[str, Any]]) -> str:
    """Outbox rows as _OUTBOX_TIMED_SQL reads them, each with its own status and times."""
    return _rows_json(
        (
            *_OUTBOX_COLUMNS(r),
            str(r["status"]),
            r["attempts"],
            _iso(r["not_before"]),
            _iso(r["created_at"]),
        )
        for r in rows
    )


def _seen_people(rows: Iterable[dict[str, Any]]) -> str:
    """People as _SEEN_SQL reads them."""
    return _rows_json(
        (r["user_id"], r["username"], r["name"], _iso(r["last_seen_at"])) for r in rows
    )


def _ids(rows: Iterable[HazardRow]) -> str:
    return json.dumps([row.id for row in rows])


# PostgreSQL's bulk statements: each one constant statement with the rows as one JSON parameter,
# its values passed to `execute` (`.bindparams(...)` copied the statement on every call),
# compiled once, where an executemany of hundreds of rows rendered them all into the statement
# each time. Values the rows share (the sweep's `now`) are bound once, not repeated per row.
# The compare-and-set of a batch of hazards: see HazardRepository.apply_many.
_APPLY_MANY = text(
    """
    UPDATE hazards AS h
    SET state = v->>2, level = (v->>3)::integer, deadline = (v->>4)::timestamptz,
        repeats = (v->>5)::integer, version = h.version + 1
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS v
    WHERE h.id = (v->>0)::integer AND h.version = (v->>1)::integer
    RETURNING h.id
    """
).bindparams(bindparam("rows", type_=Text))
_ADD_EVENTS = text(
    """
    INSERT INTO hazard_events (hazard_id, kind, at, actor_id, actor_name, detail)
    SELECT (v->>0)::integer, v->>1, :at, (v->>2)::bigint, v->>3, (v->4)::json
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS v
    """
).bindparams(bindparam("rows", type_=Text), bindparam("at", type_=DateTime(timezone=True)))
# The same for rows of different times (a batch of 收到, each at its own moment): the time is
# the row's sixth element. One statement for them all, in their order: grouping them by time
# ran one statement per 收到. `{rows}` names the parameter (see _WRITE_HELD).
_EVENTS_TIMED_SQL = """
    INSERT INTO hazard_events (hazard_id, kind, at, actor_id, actor_name, detail)
    SELECT (v->>0)::integer, v->>1, (v->>5)::timestamptz, (v->>2)::bigint, v->>3, (v->4)::json
    FROM jsonb_array_elements(CAST(:{rows} AS jsonb)) AS v
"""
_ADD_EVENTS_TIMED = text(_EVENTS_TIMED_SQL.format(rows="rows")).bindparams(
    bindparam("rows", type_=Text)
)
_ADD_OUTBOX = text(
    """
    INSERT INTO outbox (hazard_id, purpose, method, chat_id, recipient_id, text,
        reply_to_message_id, payload, dedupe_key, status, attempts, not_before, created_at)
    SELECT (v->>0)::integer, v->>1, v->>2, (v->>3)::bigint, (v->>4)::bigint, v->>5,
        (v->>6)::integer, (v->7)::json, v->>8, :status, :attempts, :not_before, :created_at
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS v
    """
).bindparams(
    bindparam("rows", type_=Text),
    bindparam("status", type_=String),
    bindparam("attempts", type_=Integer),
    bindparam("not_before", type_=DateTime(timezone=True)),
    bindparam("created_at", type_=DateTime(timezone=True)),
)
# The columns of an event and of an outbox row as the statements above read them, in order.
_EVENT_COLUMNS = itemgetter("hazard_id", "kind", "actor_id", "actor_name", "detail")
_OUTBOX_COLUMNS = itemgetter(
    "hazard_id",
    "purpose",
    "method",
    "chat_id",
    "recipient_id",
    "text",
    "reply_to_message_id",
    "payload",
    "dedupe_key",
)
_OUTBOX_TIMED_SQL = """
    INSERT INTO outbox (hazard_id, purpose, method, chat_id, recipient_id, text,
        reply_to_message_id, payload, dedupe_key, status, attempts, not_before, created_at)
    SELECT (v->>0)::integer, v->>1, v->>2, (v->>3)::bigint, (v->>4)::bigint, v->>5,
        (v->>6)::integer, (v->7)::json, v->>8, v->>9, (v->>10)::integer,
        (v->>11)::timestamptz, (v->>12)::timestamptz
    FROM jsonb_array_elements(CAST(:{rows} AS jsonb)) AS v
"""
_ADD_OUTBOX_TIMED = text(_OUTBOX_TIMED_SQL.format(rows="rows")).bindparams(
    bindparam("rows", type_=Text)
)
# People seen (a report's or a 收到's sender): user id, username, name, time. The upsert of
# `PersonRepository.seen_many`, one constant statement where an executemany bound every row.
_SEEN_SQL = """
    INSERT INTO people (user_id, username, name, started, last_seen_at)
    SELECT (v->>0)::bigint, v->>1, v->>2, false, (v->>3)::timestamptz
    FROM jsonb_array_elements(CAST(:{rows} AS jsonb)) AS v
    ON CONFLICT (user_id) DO UPDATE
    SET username = excluded.username, name = excluded.name, last_seen_at = excluded.last_seen_at
"""
_SEEN = text(_SEEN_SQL.format(rows="rows")).bindparams(bindparam("rows", type_=Text))
# Hazards whose 收到 reminder was written (`HazardRepository.remind`), by id.
_REMIND_SQL = """
    UPDATE hazards SET ack_reminded = true
    WHERE id IN (SELECT (jsonb_array_elements_text(CAST(:{rows} AS jsonb)))::integer)
"""
_REMIND = text(_REMIND_SQL.format(rows="rows")).bindparams(bindparam("rows", type_=Text))
# Everything the repositories hold, in one statement at commit on PostgreSQL (`write_held`):
# a batch of reports and 收到 wrote its reminders, events, outbox rows and senders in four,
# each a round trip the next getUpdates waited for (benchmarks/ingest.py). An empty part is
# '[]' and writes nothing, so the statement is one, compiled and prepared once. Its parts see
# the same snapshot and touch different rows: no part reads what another writes.
_WRITE_HELD = text(
    f"""
    WITH reminded AS ({_REMIND_SQL.format(rows="reminded")}),
    events AS ({_EVENTS_TIMED_SQL.format(rows="events")}),
    outbox AS ({_OUTBOX_TIMED_SQL.format(rows="outbox")}),
    people AS ({_SEEN_SQL.format(rows="people")})
    SELECT 1
    """
).bindparams(*(bindparam(name, type_=Text) for name in ("reminded", "events", "outbox", "people")))


_outbox = OutboxRow.metadata.tables["outbox"]
# A send's mark, built once (building an UPDATE per send cost as much as running it): the rows
# handed to Telegram, with the message they became, if the method returns one.
_MARK_SENT = (
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=OutboxStatus.SENT,
        sent_at=bindparam("now"),
        attempts=_outbox.c.attempts + 1,
        claimed_until=None,
        sent_message_id=func.coalesce(
            bindparam("message_id", type_=Integer), _outbox.c.sent_message_id
        ),
    )
)
_projects = Project.metadata.tables["projects"]
_hazards = HazardRow.metadata.tables["hazards"]
# The hazards whose card a sent message is keep its id (a 收到 replying to the card finds them).
_SET_CARDS = (
    update(_hazards)
    .where(_hazards.c.id.in_(bindparam("cards", expanding=True)))
    .values(card_message_id=bindparam("message_id", type_=Integer))
)
# A card's mark on PostgreSQL: the outbox row and the hazard's card id in one statement, without
# BEGIN and COMMIT (a transaction of two UPDATEs was four round trips for every report's card).
_MARK_CARD_SENT = _SET_CARDS.add_cte(_MARK_SENT.returning(_outbox.c.id).cte("sent"))


@functools.lru_cache(maxsize=8)
def _claim_statement(postgres: bool, mode: str) -> Any:
    """Lease ready rows in one UPDATE ... RETURNING: `mode` is "chat" (one chat's, in order),
    "any" (private chats first) or "split" (DMs up to one limit and groups up to another).
    Built once per dialect and mode; the rows it steps over with SKIP LOCKED are another
    process's. It was a SELECT, then an UPDATE per row."""
    if mode == "split":
        dms = _ready_rows(postgres, "dm", "lim")
        groups = _ready_rows(postgres, "group", "lim_groups")
        chosen = or_(OutboxRow.id.in_(dms), OutboxRow.id.in_(groups))
    else:
        chosen = OutboxRow.id.in_(_ready_rows(postgres, mode, "lim"))
    return (
        update(OutboxRow)
        .where(chosen)
        .values(claimed_until=bindparam("until"))
        .returning(OutboxRow)
        .execution_options(synchronize_session=False)
    )


def _ready_rows(postgres: bool, mode: str, limit: str) -> Any:
    """The ids of ready rows for `_claim_statement`, in sending order, at most `limit` of them:
    `mode` is "chat", "any", or "dm" or "group" (the halves of "split")."""
    ready = select(OutboxRow.id).where(
        OutboxRow.status == OutboxStatus.PENDING,
        # Typed by their columns (UTCDateTime): SQLite compares the stored text.
        OutboxRow.not_before <= bindparam("now"),
        or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= bindparam("now")),
    )
    if mode == "chat":
        ready = ready.where(OutboxRow.chat_id == bindparam("chat", type_=BigInteger))
        ready = ready.order_by(OutboxRow.id)
    else:
        if mode != "any":
            ready = ready.where(OutboxRow.chat_id > 0 if mode == "dm" else OutboxRow.chat_id < 0)
        # One array on PostgreSQL: an expanding list made a new statement, prepared anew on
        # each connection, for every number of chats being sent to (a third of the bot's
        # prepares under the ingest mix).
        ready = ready.where(_not_in_list(postgres, OutboxRow.chat_id, "skip", BigInteger))
        ready = ready.order_by(case((OutboxRow.chat_id > 0, 0), else_=1), OutboxRow.id)
    ready = ready.limit(bindparam(limit, type_=Integer))
    if postgres:
        ready = ready.with_for_update(skip_locked=True, key_share=True)
    return ready.scalar_subquery()


def _in_list(postgres: bool, column: Any, name: str, item: Any) -> ColumnElement[bool]:
    """`column IN :name` for a prebuilt statement, the list bound at execution: on PostgreSQL
    one array parameter (as `_among`), elsewhere an expanding IN."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(item)))  # type: ignore[no-any-return]
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]


def _not_in_list(postgres: bool, column: Any, name: str, item: Any) -> ColumnElement[bool]:
    """`column NOT IN :name`, bound as `_in_list` binds (true for every row when it is empty)."""
    if postgres:
        return column != all_(bindparam(name, type_=ARRAY(item)))  # type: ignore[no-any-return]
    return column.not_in(bindparam(name, expanding=True))  # type: ignore[no-any-return]


_events = HazardEvent.metadata.tables["hazard_events"]
# A 收到's message id, and what makes an event a 收到: the kind is in the SQL, for the partial
# index ix_hazard_events_acked (see of_kind_for).
_ACKED_MESSAGE = _events.c.detail["message_id"].as_integer()
_IS_ACK = _events.c.kind == literal("acknowledged", literal_execute=True)


# The next two are built once per dialect (building them cost more than running them), the
# lists bound at execution: every batch of reports and 收到 runs the second.
@functools.lru_cache(maxsize=2)
def _acknowledged_statement(postgres: bool) -> Any:
    """The 收到 recorded for some hazards (`ids`), as (hazard id, message id)."""
    return select(_events.c.hazard_id, _ACKED_MESSAGE).where(
        _in_list(postgres, _events.c.hazard_id, "ids", Integer), _IS_ACK
    )


@functools.lru_cache(maxsize=2)
def _by_messages_statement(postgres: bool) -> Any:
    """Hazards in some chats (`chats`) whose report or card is one of some messages, each with
    the messages of the 收到 recorded for it (a PostgreSQL array; on SQLite, text "5,7")."""
    messages = func.array_agg(_ACKED_MESSAGE) if postgres else func.group_concat(_ACKED_MESSAGE)
    acknowledged = (
        select(messages).where(_events.c.hazard_id == HazardRow.id, _IS_ACK).scalar_subquery()
    )
    return select(HazardRow, acknowledged).where(
        _in_list(postgres, HazardRow.chat_id, "chats", BigInteger),
        or_(
            _in_list(postgres, HazardRow.report_message_id, "messages", Integer),
            _in_list(postgres, HazardRow.card_message_id, "messages", Integer),
        ),
    )


# Evidence looks up the message it replies to: built once (building it cost as much as running
# it), the values bound at execution.
_BY_MESSAGE = select(HazardRow).where(
    HazardRow.chat_id == bindparam("of_chat"),
    or_(
        HazardRow.report_message_id == bindparam("message"),
        HazardRow.card_message_id == bindparam("message"),
    ),
)


def _shared(rows: Sequence[dict[str, Any]], *keys: str) -> Any:
    """The values of `keys` when every row has the same (bound once), else None.

    A sweep's rows share their time; a batch of 收到 does not, and then the rows carry their
    own (one statement either way: one per distinct time was one per 收到).
    """
    # itemgetter and map, no tuple built per row in Python: a catch-up checks 300,000 rows.
    get = itemgetter(*keys)
    first = get(rows[0])
    return first if all(map(eq, repeat(first), map(get, rows))) else None


class ProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def take_number(self, chat_id: int, name: str, now: datetime) -> tuple[int, int]:
        """The project's id and its next #N: `take_numbers` for one."""
        return (await self.take_numbers({chat_id: (name, 1)}, now))[chat_id]

    async def take_numbers(
        self, wanted: Mapping[int, tuple[str, int]], now: datetime
    ) -> dict[int, tuple[int, int]]:
        """For each chat, given (project name, how many numbers): the project's id and the first
        of that many consecutive #N, taken atomically so two processes never share one. A
        project is created by its first report. One statement for every project of a batch.
        """
        if _postgres(self._s):
            # One constant statement: a multi-row VALUES was a new statement, prepared anew,
            # for every number of projects in a batch.
            numbers = _rows_json(
                [chat_id, name, 1 + count] for chat_id, (name, count) in wanted.items()
            )
            result = await self._s.execute(_TAKE_NUMBERS, {"rows": numbers, "now": now})
        else:
            rows = [  # every transaction locks projects in one order: no deadlock
                {"chat_id": chat_id, "name": name, "next_number": 1 + count, "created_at": now}
                for chat_id, (name, count) in sorted(wanted.items())
            ]
            # Several rows: an executemany, which SQLAlchemy sends as one multi-row statement.
            result = await self._s.execute(
                _SQLITE_TAKE_NUMBERS, rows[0] if len(rows) == 1 else rows
            )
        return {
            int(chat_id): (int(project_id), int(after) - wanted[chat_id][1])
            for project_id, chat_id, after in result.all()
        }

    async def by_chat(self, chat_id: int) -> Project | None:
        result = await self._s.execute(select(Project).where(Project.chat_id == chat_id))
        return result.scalar_one_or_none()

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: the project and its hazards follow the new id."""
        await self._s.execute(
            update(Project).where(Project.chat_id == old_chat_id).values(chat_id=new_chat_id)
        )
        await self._s.execute(
            update(HazardRow).where(HazardRow.chat_id == old_chat_id).values(chat_id=new_chat_id)
        )

    async def record_migration(self, old_chat_id: int, new_chat_id: int, now: datetime) -> bool:
        """Remember that `old_chat_id` is now `new_chat_id`; False when already known."""
        if await self._s.get(ChatMigration, old_chat_id) is not None:
            return False
        self._s.add(ChatMigration(old_chat_id=old_chat_id, new_chat_id=new_chat_id, at=now))
        await self._s.flush()
        return True

    async def migrated_from(self, chat_id: int) -> int | None:
        """The id a supergroup had as a basic group (the one the config names), if any."""
        result = await self._s.execute(
            select(ChatMigration.old_chat_id).where(ChatMigration.new_chat_id == chat_id)
        )
        return result.scalar_one_or_none()


# `ProjectRepository.take_numbers` on PostgreSQL: the rows are (chat id, name, next #N past
# those taken), locked in the order of their chats, so that two transactions never wait for
# each other. (Every upsert draws a value of the projects' id sequence, used or not: at one
# draw per project in a batch that reports, an int column lasts some two billion batches.)
_TAKE_NUMBERS = text(
    """
    INSERT INTO projects (name, chat_id, next_number, created_at)
    SELECT v->>1, (v->>0)::bigint, (v->>2)::integer, :now
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS v
    ORDER BY (v->>0)::bigint
    ON CONFLICT (chat_id) DO UPDATE
    SET next_number = projects.next_number + excluded.next_number - 1
    RETURNING id, chat_id, next_number
    """
).bindparams(bindparam("rows", type_=Text), bindparam("now", type_=DateTime(timezone=True)))


def _sqlite_take_numbers() -> Any:
    """`ProjectRepository.take_numbers` on SQLite: insert a project with its next #N past the
    numbers taken, or move on the #N of the one there; the values bound at execution."""
    stmt = sqlite_insert(_projects)
    taken = stmt.excluded.next_number - 1
    return stmt.on_conflict_do_update(
        index_elements=["chat_id"], set_={"next_number": _projects.c.next_number + taken}
    ).returning(_projects.c.id, _projects.c.chat_id, _projects.c.next_number)


_SQLITE_TAKE_NUMBERS = _sqlite_take_numbers()


@functools.lru_cache(maxsize=8)
def _person_upsert(postgres: bool, columns: tuple[str, ...]) -> Any:
    """INSERT a person, or UPDATE `columns` of the one there: built once per dialect and set of
    columns (building it anew was most of its cost), the values bound at execution."""
    table = Person.metadata.tables["people"]
    stmt = (pg_insert if postgres else sqlite_insert)(table)
    changed = {c: stmt.excluded[c] for c in columns if c != "user_id"}
    return stmt.on_conflict_do_update(index_elements=["user_id"], set_=changed)


class PersonRepository:
    """People; `seen` is held like the events (see _HeldRows): written at the next read of
    this repository, at its next other write, or at commit."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        self._seen: dict[int, dict[str, Any]] = {}  # by user id: a later sighting replaces one

    async def seen(
        self, user_id: int, username: str | None, name: str | None, now: datetime
    ) -> None:
        """Remember a person's current username and name: one upsert, no entity.

        Every report and 收到 records its sender; read-then-write through the ORM was a third
        of a 收到's CPU (benchmarks/ingest.py).
        """
        await self.seen_many([(user_id, username, name)], now)

    async def seen_many(
        self, people: Iterable[tuple[int, str | None, str | None]], now: datetime
    ) -> None:
        """`seen` for several people (user id, username, name) at once: one statement.

        A batch of 收到 records each sender; an upsert of its own for each was a third of the
        batch's statements.
        """
        for uid, username, name in people:
            values = {"user_id": uid, "username": username, "name": name, "last_seen_at": now}
            self._seen[uid] = values  # upserted in turn, the last sighting's values would win
            self._refresh_known(values)

    @property
    def holding(self) -> bool:
        return bool(self._seen)

    def take_pending(self) -> list[dict[str, Any]]:
        """The sightings held, handed over to be written (`write_held`)."""
        rows, self._seen = list(self._seen.values()), {}
        return rows

    async def write_pending(self) -> None:
        if self._seen:
            rows = self.take_pending()
            if _postgres(self._s):
                await self._s.flush()  # as _upsert_many: entities first
                await self._s.execute(_SEEN, {"rows": _seen_people(rows)})
            else:
                await self._upsert_many(rows)

    async def mark_started(
        self, user_id: int, username: str | None, name: str | None, now: datetime
    ) -> None:
        await self._upsert(
            {
                "user_id": user_id,
                "username": username,
                "name": name,
                "last_seen_at": now,
                "started": True,
                "unreachable_reason": None,
            }
        )

    async def _upsert(self, values: dict[str, Any]) -> None:
        await self._upsert_many([values])

    async def _upsert_many(self, rows: list[dict[str, Any]]) -> None:
        """Upsert rows of the same columns, each of a different person."""
        await self.write_pending()  # sightings held before this write go first
        # The session may hold these people as entities: write them first, so the upsert does
        # not race an entity's own INSERT, and refresh them afterwards.
        await self._s.flush()
        stmt = _person_upsert(_postgres(self._s), tuple(rows[0]))
        params = [{"started": False, **values} for values in rows]
        # One person: a plain execute, as `seen` always ran; several: one executemany.
        await self._s.execute(stmt, params[0] if len(params) == 1 else params)
        for values in rows:
            self._refresh_known(values)

    def _refresh_known(self, values: dict[str, Any]) -> None:
        """An entity of the person the session holds reads the values written."""
        known = self._s.identity_map.get(self._s.identity_key(Person, values["user_id"]))
        if known is not None:
            for key, value in values.items():
                if key != "user_id":
                    set_committed_value(known, key, value)

    async def mark_unreachable(self, user_id: int, reason: str) -> bool:
        """Record a refused DM; True when we had believed the person reachable until now."""
        await self.write_pending()
        person = await self._s.get(Person, user_id)
        if person is None:
            person = Person(user_id=user_id, started=False)
            self._s.add(person)
        was_reachable = bool(person.started)
        person.started = False
        person.unreachable_reason = reason
        return was_reachable

    async def get_many(self, user_ids: Iterable[int]) -> dict[int, Person]:
        ids = list(set(user_ids))
        if not ids:
            return {}
        await self.write_pending()
        rows = await self._s.execute(select(Person).where(Person.user_id.in_(ids)))
        return {p.user_id: p for p in rows.scalars()}

    async def cards(self, user_ids: Iterable[int]) -> dict[int, PersonCard]:
        """Name and Start of many people, read-only: what texts need, without entities."""
        ids = set(user_ids)
        if not ids:
            return {}
        await self.write_pending()
        rows = await self._s.execute(
            select(Person.user_id, Person.name, Person.started).where(
                _among(self._s, Person.user_id, ids, BigInteger)
            )
        )
        return {int(uid): PersonCard(name, bool(started)) for uid, name, started in rows.all()}

    async def ids_for_usernames(self, usernames: Iterable[str]) -> dict[str, int]:
        names = [u.lower() for u in usernames]
        if not names:
            return {}
        await self.write_pending()
        rows = await self._s.execute(
            select(Person.username, Person.user_id).where(func.lower(Person.username).in_(names))
        )
        return {str(name): int(uid) for name, uid in rows.all() if name}

    async def bind(self, chat_id: int, user_id: int, now: datetime) -> bool:
        """Tie a person to a project through its start link; False when already tied."""
        await self.write_pending()
        if await self._s.get(Binding, (chat_id, user_id)) is not None:
            return False
        self._s.add(Binding(chat_id=chat_id, user_id=user_id, bound_at=now))
        await self._s.flush()
        return True


class Referred(NamedTuple):
    """What `HazardRepository.by_messages` found: hazards by (chat, message), and the
    (hazard id, message id) of each 收到 committed for them."""

    hazards: dict[tuple[int, int], HazardRow]
    acknowledged: set[tuple[int, int]]


class PersonCard(NamedTuple):
    name: str | None
    started: bool


class HazardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        # Rows whose 收到 reminder was written, held (see `remind`); the list keeps the
        # entities alive, so the session's identity map keeps serving the value they now read.
        self._reminded: list[HazardRow] = []

    def add(self, row: HazardRow) -> None:
        self._s.add(row)

    def remind(self, row: HazardRow) -> None:
        """Mark a flushed hazard's 收到 reminder as written. The row reads it at once; the
        UPDATE is held like the events (see _HeldRows) and written at commit, beside them."""
        assert row.id is not None, "a hazard is reminded once it has its id"
        set_committed_value(row, "ack_reminded", True)
        self._reminded.append(row)

    @property
    def holding(self) -> bool:
        return bool(self._reminded)

    def take_pending(self) -> list[HazardRow]:
        rows, self._reminded = self._reminded, []
        return rows

    async def write_pending(self) -> None:
        if self._reminded:
            rows = self.take_pending()
            if _postgres(self._s):
                await self._s.execute(_REMIND, {"rows": _ids(rows)})
            else:
                await self._s.execute(
                    update(_hazards)
                    .where(_hazards.c.id.in_([row.id for row in rows]))
                    .values(ack_reminded=True)
                )

    async def flush(self) -> None:
        await self._s.flush()

    async def get(self, hazard_id: int) -> HazardRow | None:
        return await self._s.get(HazardRow, hazard_id)

    async def by_number(self, chat_id: int, number: int) -> HazardRow | None:
        result = await self._s.execute(
            select(HazardRow).where(HazardRow.chat_id == chat_id, HazardRow.number == number)
        )
        return result.scalar_one_or_none()

    async def by_message(self, chat_id: int, message_id: int) -> HazardRow | None:
        """The hazard whose report or card is this message."""
        result = await self._s.execute(_BY_MESSAGE, {"of_chat": chat_id, "message": message_id})
        return result.scalars().first()

    async def by_messages(self, keys: Collection[tuple[int, int]]) -> Referred:
        """The hazards whose report or card is one of these (chat, message) pairs, and the 收到
        committed for them, in one query: a batch asks both, and a second query for the 收到 was
        a statement more in every batch (benchmarks/ingest.py)."""
        if not keys:
            return Referred({}, set())
        result = await self._s.execute(
            _by_messages_statement(_postgres(self._s)),
            {
                "chats": list({chat_id for chat_id, _ in keys}),
                "messages": list({message_id for _, message_id in keys}),
            },
        )
        found: dict[tuple[int, int], HazardRow] = {}
        acknowledged: set[tuple[int, int]] = set()
        for row, messages in result:
            pairs = [(row.chat_id, m) for m in (row.report_message_id, row.card_message_id)]
            if not (wanted := [pair for pair in pairs if pair in keys]):
                continue  # a chat of one pair and a message of another
            found.update(dict.fromkeys(wanted, row))
            if isinstance(messages, str):  # SQLite's group_concat
                messages = messages.split(",")
            acknowledged.update((row.id, int(m)) for m in messages or () if m is not None)
        return Referred(found, acknowledged)

    async def active_in_chat(self, chat_id: int) -> Sequence[HazardRow]:
        result = await self._s.execute(
            select(HazardRow)
            .where(HazardRow.chat_id == chat_id, HazardRow.state.in_(ACTIVE_STATES))
            .order_by(HazardRow.number)
        )
        return result.scalars().all()

    async def due(self, now: datetime, limit: int) -> list[DueHazard]:
        """Active hazards whose deadline has passed, earliest first, locked so no other process
        takes them; read without entities (see DueHazard)."""
        stmt = (
            select(*_DUE_COLUMNS)
            .where(HazardRow.state.in_(ACTIVE_STATES), HazardRow.deadline <= now)
            .order_by(HazardRow.deadline)
            .limit(limit)
        )
        rows = (await self._s.execute(_skip_locked(self._s, stmt))).all()
        return [_due_hazard(r) for r in rows]

    async def next_deadline(self) -> datetime | None:
        result = await self._s.execute(
            select(func.min(HazardRow.deadline)).where(HazardRow.state.in_(ACTIVE_STATES))
        )
        value = result.scalar_one_or_none()
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # defensive: the stored value is UTC
        return value

    async def apply(self, row: HazardFields, hazard: Hazard) -> bool:
        """Write a decision with compare-and-set on the version; False when someone was first."""
        result = await self._s.execute(
            update(HazardRow)
            .where(HazardRow.id == row.id, HazardRow.version == row.version)
            .values(
                state=hazard.state,
                level=hazard.level,
                deadline=hazard.deadline,
                repeats=hazard.repeats,
                version=HazardRow.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        if not isinstance(row, HazardRow):
            return True  # a sweep's read-only copy: nothing in the session to keep in step
        # Keep the in-session copy truthful without another SELECT.
        for name, value in (
            ("state", hazard.state),
            ("level", hazard.level),
            ("deadline", hazard.deadline),
            ("repeats", hazard.repeats),
            ("version", row.version + 1),
        ):
            set_committed_value(row, name, value)
        return True

    async def apply_many(self, changes: Sequence[tuple[HazardFields, Hazard]]) -> set[int]:
        """Compare-and-set many rows in one statement; returns the ids whose version matched.

        One UPDATE ... FROM (VALUES ...) per batch keeps a catch-up of 100,000 hazards from
        paying a round trip per row.
        """
        if not changes:
            return set()
        if not _postgres(self._s):
            # SQLite has no column list for a VALUES alias, and an in-process write costs
            # no network round trip: compare-and-set row by row.
            return {row.id for row, h in changes if await self.apply(row, h)}
        # One constant statement with arrays bound: compiled once and cached, where a VALUES
        # list of 200 rows was compiled anew for every batch (70 ms each in the catch-up).
        rows = _rows_json(
            (row.id, row.version, h.state, h.level, _iso(h.deadline), h.repeats)
            for row, h in changes
        )
        won = {int(i) for i in (await self._s.execute(_APPLY_MANY, {"rows": rows})).scalars()}
        for row, _h in changes:
            if row.id in won and isinstance(row, HazardRow):
                # Keep the in-session copy truthful without another SELECT.
                set_committed_value(row, "version", row.version + 1)
        return won

    async def postpone(self, hazard_id: int, until: datetime) -> None:
        """Move a deadline that cannot be processed now; the version bump voids older wake-ups."""
        await self._s.execute(
            update(HazardRow)
            .where(HazardRow.id == hazard_id)
            .values(deadline=until, version=HazardRow.version + 1)
            .execution_options(synchronize_session=False)
        )

    async def count_by_state(self) -> dict[HazardState, int]:
        rows = await self._s.execute(
            select(HazardRow.state, func.count()).group_by(HazardRow.state)
        )
        return {HazardState(s): int(n) for s, n in rows.all()}

    async def open_in_chat(self, chat_id: int) -> Sequence[HazardRow]:
        """Hazards still waiting for someone on site, oldest first."""
        return (await self.open_in_chats([chat_id])).get(chat_id, [])

    async def open_in_chats(self, chat_ids: Collection[int]) -> dict[int, list[HazardRow]]:
        """`open_in_chat` of several chats in one query: a batch's bare 收到 (a query for each
        was a statement per 收到, in the case that matters most: people typing 收到 at a report)."""
        if not chat_ids:
            return {}
        result = await self._s.execute(
            select(HazardRow)
            .where(
                _among(self._s, HazardRow.chat_id, list(set(chat_ids)), BigInteger),
                HazardRow.state == HazardState.OPEN,
            )
            .order_by(HazardRow.chat_id, HazardRow.number)
        )
        found: dict[int, list[HazardRow]] = {}
        for row in result.scalars():
            found.setdefault(row.chat_id, []).append(row)
        return found

    async def all_active(self) -> Sequence[HazardRow]:
        """Every open or on-site hazard of every project, by chat and number."""
        result = await self._s.execute(
            select(HazardRow)
            .where(HazardRow.state.in_(ACTIVE_STATES))
            .order_by(HazardRow.chat_id, HazardRow.number)
        )
        return result.scalars().all()


def event_values(
    hazard_id: int,
    kind: str,
    at: datetime,
    actor_id: int | None,
    actor_name: str | None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    """An event as plain values, for EventRepository.append and append_many."""
    return {
        "hazard_id": hazard_id,
        "kind": kind,
        "at": at,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "detail": detail,
    }


class _HeldRows:
    """Rows kept back and written at the next read of their table or at commit, all in one
    statement: through the ORM each was an entity and an INSERT of its own."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        self._pending: list[dict[str, Any]] = []

    @property
    def holding(self) -> bool:
        return bool(self._pending)

    def take_pending(self) -> list[dict[str, Any]]:
        """The rows held, handed over to be written (`write_held`)."""
        pending, self._pending = self._pending, []
        return pending

    async def write_pending(self) -> None:
        """Write the rows held; the unit of work calls this before it commits."""
        if self._pending:
            pending = self.take_pending()
            await self._s.flush()  # their hazards first: the rows refer to them
            await self._write(pending)

    async def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError


class EventRepository(_HeldRows):
    """The hazards' history; `append` is held (see _HeldRows)."""

    def append(
        self,
        hazard_id: int,
        kind: str,
        at: datetime,
        *,
        actor_id: int | None = None,
        actor_name: str | None = None,
        **detail: Any,
    ) -> None:
        self._pending.append(event_values(hazard_id, kind, at, actor_id, actor_name, detail))

    async def append_many(self, events: Sequence[dict[str, Any]]) -> None:
        """Many events in one statement: each a dict of hazard_id, kind, at, actor_id,
        actor_name and detail. Written at once (after those `append` holds, to keep order)."""
        await self.write_pending()
        await self._write(events)

    async def _write(self, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        if _postgres(self._s):
            if (at := _shared(events, "at")) is not None:
                rows = _rows_json(map(_EVENT_COLUMNS, events))
                await self._s.execute(_ADD_EVENTS, {"rows": rows, "at": at})
            else:
                await self._s.execute(_ADD_EVENTS_TIMED, {"rows": _timed_events(events)})
            return
        # The table, not the entity: the ORM's bulk path ran a statement per row.
        await self._s.execute(insert(HazardEvent.metadata.tables["hazard_events"]), list(events))

    async def for_hazard(self, hazard_id: int) -> Sequence[HazardEvent]:
        await self.write_pending()
        result = await self._s.execute(
            select(HazardEvent).where(HazardEvent.hazard_id == hazard_id).order_by(HazardEvent.id)
        )
        return result.scalars().all()

    async def of_kind_for(
        self, hazard_ids: Sequence[int], kind: str
    ) -> dict[int, list[HazardEvent]]:
        """Events of one kind for many hazards at once, oldest first."""
        out: dict[int, list[HazardEvent]] = {}
        if not hazard_ids:
            return out
        await self.write_pending()
        result = await self._s.execute(
            select(HazardEvent)
            .where(
                _among(self._s, HazardEvent.hazard_id, hazard_ids, Integer),
                # Written into the SQL, so that PostgreSQL can use a partial index of one kind
                # (ix_hazard_events_acked) also in the generic plan of a prepared statement.
                HazardEvent.kind == bindparam("kind", kind, literal_execute=True),
            )
            .order_by(HazardEvent.id)
        )
        for event in result.scalars():
            out.setdefault(event.hazard_id, []).append(event)
        return out

    async def acknowledged_messages(self, hazard_ids: Collection[int]) -> set[tuple[int, int]]:
        """(hazard id, message id) of every 收到 recorded for these hazards: what Telegram
        delivers again after a restart (it was committed, not yet confirmed) is found here."""
        if not hazard_ids:
            return set()
        # The rows held back are looked at here, not written first: writing them now would
        # split the batch's one insert of events in two.
        held = {
            (e["hazard_id"], e["detail"]["message_id"])
            for e in self._pending
            if e["kind"] == "acknowledged" and e["hazard_id"] in hazard_ids
        }
        result = await self._s.execute(
            _acknowledged_statement(_postgres(self._s)), {"ids": list(hazard_ids)}
        )
        return held | {(int(hazard_id), int(message)) for hazard_id, message in result if message}

    async def of_kind(self, hazard_id: int, kind: str) -> Sequence[HazardEvent]:
        await self.write_pending()
        result = await self._s.execute(
            select(HazardEvent)
            .where(HazardEvent.hazard_id == hazard_id, HazardEvent.kind == kind)
            .order_by(HazardEvent.id)
        )
        return result.scalars().all()


class EvidenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add(self, row: EvidenceRow) -> None:
        self._s.add(row)

    async def photo_used(self, file_unique_id: str) -> bool:
        result = await self._s.execute(
            select(EvidenceRow.id).where(EvidenceRow.file_unique_id == file_unique_id).limit(1)
        )
        return result.first() is not None

    async def for_message(self, chat_id: int, message_id: int) -> EvidenceRow | None:
        """The evidence recorded for a message, so a redelivery or an edit is not judged twice."""
        result = await self._s.execute(
            select(EvidenceRow)
            .where(EvidenceRow.chat_id == chat_id, EvidenceRow.message_id == message_id)
            .order_by(EvidenceRow.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()


class OutboxRepository(_HeldRows):
    """Messages to send; `add` is held (see _HeldRows)."""

    def add(self, values: dict[str, Any]) -> None:
        """One row, from `bot.outbox_rows.outbox_values`."""
        self._pending.append(values)

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many rows in one statement, from `bot.outbox_rows.outbox_values`."""
        await self.write_pending()
        await self._write(rows)

    async def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if _postgres(self._s):
            shared = _shared(rows, "status", "attempts", "not_before", "created_at")
            if shared is None:
                await self._s.execute(_ADD_OUTBOX_TIMED, {"rows": _timed_outbox(rows)})
                return
            values = _rows_json(map(_OUTBOX_COLUMNS, rows))
            status, attempts, not_before, created_at = shared
            await self._s.execute(
                _ADD_OUTBOX,
                {
                    "rows": values,
                    "status": str(status),
                    "attempts": attempts,
                    "not_before": not_before,
                    "created_at": created_at,
                },
            )
            return
        # The table, not the entity: the ORM's bulk path ran a statement per row.
        await self._s.execute(insert(OutboxRow.metadata.tables["outbox"]), list(rows))

    async def claim(
        self,
        now: datetime,
        lease: timedelta,
        limit: int,
        *,
        chat_id: int | None = None,
        groups_limit: int | None = None,
        skip_chats: Collection[int] = (),
    ) -> Sequence[OutboxRow]:
        """Take pending rows for sending; a lease, not a held lock, so sending needs no transaction.

        A process that dies mid-send leaves its lease to expire, and the row is sent again: at
        most the messages in flight are duplicated, never lost. Private chats (positive ids)
        come first: a DM is the escalation, a group message only tells about it. `chat_id`
        takes one chat's rows; with `groups_limit`, `limit` counts DMs and `groups_limit`
        groups. `skip_chats` leaves out chats this process is still sending to.
        """
        await self.write_pending()
        mode = "chat" if chat_id is not None else "any" if groups_limit is None else "split"
        params = {
            "now": now,
            "until": now + lease,
            "lim": limit,
            "lim_groups": groups_limit or 0,
            "chat": chat_id or 0,
            "skip": list(skip_chats),
        }
        stmt = _claim_statement(_postgres(self._s), mode)
        rows = list((await self._s.scalars(stmt, params)).all())
        # RETURNING keeps no order: the order of the inner SELECT, again.
        rows.sort(key=lambda r: (r.id,) if mode == "chat" else (r.chat_id < 0, r.id))
        return rows

    async def renew_many(self, held: Sequence[tuple[int, datetime]], until: datetime) -> set[int]:
        """Compare-and-set on leases: extend each row's lease only if it is still the one we
        hold (`held` is (id, lease) pairs); returns the ids renewed. One statement per lease."""
        renewed: set[int] = set()
        by_lease: dict[datetime, list[int]] = {}
        for outbox_id, lease in held:
            by_lease.setdefault(lease, []).append(outbox_id)
        for lease, ids in by_lease.items():  # rows claimed together share their lease
            result = await self._s.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(ids),
                    OutboxRow.status == OutboxStatus.PENDING,
                    OutboxRow.claimed_until == lease,
                )
                .values(claimed_until=until)
                .returning(OutboxRow.id)
                .execution_options(synchronize_session=False)
            )
            renewed.update(int(i) for i in result.scalars())
        return renewed

    async def mark_sent(
        self,
        outbox_ids: Sequence[int],
        now: datetime,
        message_id: int | None,
        *,
        cards: Collection[int] = (),
    ) -> None:
        """Rows handed to Telegram (merged notices share one message): one UPDATE, no entities.

        `cards` are the hazards whose card this message is: they keep its id, so that a 收到
        replying to the card finds them. On PostgreSQL that is the same statement; on SQLite,
        which has no UPDATE in a WITH, one more in the same transaction.
        """
        values = {"ids": list(outbox_ids), "now": now, "message_id": message_id}
        if not cards or message_id is None:
            await self._s.execute(_MARK_SENT, values)
        elif _postgres(self._s):
            await self._s.execute(_MARK_CARD_SENT, {**values, "cards": list(cards)})
        else:
            await self._s.execute(_MARK_SENT, values)
            await self._s.execute(_SET_CARDS, {"cards": list(cards), "message_id": message_id})

    async def get(self, outbox_id: int) -> OutboxRow | None:
        await self.write_pending()
        return await self._s.get(OutboxRow, outbox_id)

    async def get_many(self, outbox_ids: Sequence[int]) -> list[OutboxRow]:
        """The rows with these ids, in id order."""
        await self.write_pending()
        result = await self._s.execute(
            select(OutboxRow).where(OutboxRow.id.in_(list(outbox_ids))).order_by(OutboxRow.id)
        )
        return list(result.scalars())

    async def pending_count(self) -> int:
        await self.write_pending()
        result = await self._s.execute(
            select(func.count()).where(OutboxRow.status == OutboxStatus.PENDING)
        )
        return int(result.scalar_one())

    async def next_ready_at(self) -> datetime | None:
        await self.write_pending()
        result = await self._s.execute(
            select(OutboxRow.not_before)
            .where(OutboxRow.status == OutboxStatus.PENDING)
            .order_by(OutboxRow.not_before)
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def for_hazard(self, hazard_id: int) -> Sequence[OutboxRow]:
        await self.write_pending()
        result = await self._s.execute(
            select(OutboxRow).where(OutboxRow.hazard_id == hazard_id).order_by(OutboxRow.id)
        )
        return result.scalars().all()

    async def by_sent_message(self, chat_id: int, message_id: int) -> OutboxRow | None:
        """The row that became this bot message, e.g. the escalation DM a supervisor replied to."""
        await self.write_pending()
        result = await self._s.execute(
            select(OutboxRow)
            .where(OutboxRow.chat_id == chat_id, OutboxRow.sent_message_id == message_id)
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def has_key(self, key: str) -> bool:
        """Whether a delivery with this dedupe key was already written."""
        if any(row["dedupe_key"] == key for row in self._pending):
            return True
        result = await self._s.execute(
            select(OutboxRow.id).where(OutboxRow.dedupe_key == key).limit(1)
        )
        return result.first() is not None


async def write_held(
    session: AsyncSession,
    hazards: HazardRepository,
    events: EventRepository,
    outbox: OutboxRepository,
    people: PersonRepository,
) -> None:
    """Write what the repositories hold, after the session's own entities (`UnitOfWork.flush`).

    On PostgreSQL, where more than one of them holds something, in one statement
    (_WRITE_HELD); otherwise each in its own, as its repository writes it.
    """
    await session.flush()  # the hazards first: the rows held refer to them
    held = (hazards.holding, events.holding, outbox.holding, people.holding)
    if _postgres(session) and sum(held) > 1:
        await session.execute(
            _WRITE_HELD,
            {
                "reminded": _ids(hazards.take_pending()),
                "events": _timed_events(events.take_pending()),
                "outbox": _timed_outbox(outbox.take_pending()),
                "people": _seen_people(people.take_pending()),
            },
        )
        return
    await hazards.write_pending()
    await events.write_pending()
    await outbox.write_pending()
    await people.write_pending()

"""The engine's one precise wake-up: re-armed when a deadline comes earlier, not after every update."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config
from bot.engine import CATCH_UP_JOB, WAKE_JOB, EscalationEngine
from escalation.clock import FakeClock
from tests.botkit import running_bot
from tests.conftest import OUTSIDER, REPORTER, SAFETY, T0, Database


class RealTimeFakeClock(FakeClock):
    """A fake clock whose deadlines are real seconds away, so the engine arms its wake-up."""

    def real_seconds_until(self, when: datetime) -> float | None:
        return (when - self.now()).total_seconds()


class FakeJob:
    def __init__(self, queue: FakeQueue, when: float, name: str) -> None:
        self.queue, self.when, self.name = queue, when, name

    def schedule_removal(self) -> None:
        self.queue.jobs.remove(self)


class FakeQueue:
    """The part of PTB's JobQueue the engine uses; jobs are only recorded, never run."""

    def __init__(self) -> None:
        self.jobs: list[FakeJob] = []

    def get_jobs_by_name(self, name: str) -> list[FakeJob]:
        return [j for j in self.jobs if j.name == name]

    def run_once(self, _callback: Any, when: float, name: str, **_: Any) -> FakeJob:
        job = FakeJob(self, when, name)
        self.jobs.append(job)
        return job

    def run_repeating(self, _callback: Any, interval: float, name: str, **_: Any) -> FakeJob:
        return self.run_once(_callback, interval, name)


class FakeEscalator:
    """Answers next_deadline from a list, counting the reads; `during_read` runs mid-read."""

    def __init__(self, deadline: datetime | None) -> None:
        self.deadline = deadline
        self.reads = 0
        self.during_read: Callable[[], Awaitable[None]] | None = None

    async def next_deadline(self) -> datetime | None:
        self.reads += 1
        answer = self.deadline
        if self.during_read is not None:
            hook, self.during_read = self.during_read, None
            await hook()
        return answer


def engine_with(deadline: datetime | None) -> tuple[EscalationEngine, FakeEscalator, FakeQueue]:
    escalator, queue = FakeEscalator(deadline), FakeQueue()
    engine = EscalationEngine(escalator, None, RealTimeFakeClock(T0))  # type: ignore[arg-type]
    engine._queue = queue  # type: ignore[assignment]
    return engine, escalator, queue


def wake_at(queue: FakeQueue) -> float:
    [job] = queue.get_jobs_by_name(WAKE_JOB)
    return round(job.when)


async def test_a_later_deadline_leaves_the_wake_up_and_the_database_alone() -> None:
    """Armed for 09:30, a new deadline at 10:00 changes nothing and reads nothing."""
    engine, escalator, queue = engine_with(T0 + timedelta(minutes=30))
    await engine.arm()
    assert (escalator.reads, wake_at(queue)) == (1, 1800)
    await engine.wake_by(T0 + timedelta(hours=1))
    assert (escalator.reads, wake_at(queue)) == (1, 1800)


async def test_an_earlier_deadline_moves_the_wake_up_without_a_query() -> None:
    """Armed for 09:30, a new deadline at 09:10 moves the one wake-up to 09:10."""
    engine, escalator, queue = engine_with(T0 + timedelta(minutes=30))
    await engine.arm()
    await engine.wake_by(T0 + timedelta(minutes=10))
    assert (escalator.reads, wake_at(queue)) == (1, 600)


async def test_nothing_armed_arms_the_new_deadline() -> None:
    """With no active deadline, the first report's deadline is armed."""
    engine, escalator, queue = engine_with(None)
    await engine.arm()
    assert queue.get_jobs_by_name(WAKE_JOB) == []
    await engine.wake_by(T0 + timedelta(minutes=30))
    assert (escalator.reads, wake_at(queue)) == (1, 1800)


async def test_a_deadline_committed_during_a_read_is_not_lost() -> None:
    """arm() read 09:30 just before a report committed 09:10: the wake-up stays at 09:10."""
    engine, escalator, queue = engine_with(T0 + timedelta(minutes=30))

    async def report_commits() -> None:
        await engine.wake_by(T0 + timedelta(minutes=10))

    escalator.during_read = report_commits
    await engine.arm()
    assert wake_at(queue) == 600


async def test_a_due_wake_up_is_read_again_in_full() -> None:
    """A wake-up that is due (its tick may be running) is re-read from the database."""
    engine, escalator, queue = engine_with(T0 + timedelta(minutes=30))
    await engine.arm()
    assert isinstance(engine._clock, FakeClock)
    engine._clock.advance(timedelta(minutes=31))
    await engine.wake_by(T0 + timedelta(hours=2))
    assert escalator.reads == 2
    assert wake_at(queue) == 0


async def test_an_ack_reads_no_deadline_and_a_report_reads_none(
    config: Config, database: Database
) -> None:
    """A 收到 to a report, and the report itself, never query the next deadline; the 收到 is
    still answered."""
    async with running_bot(config, database, start=T0) as bot:
        queue = bot.app.job_queue
        assert queue is not None
        for _ in range(500):  # the catch-up at start reads the deadline once: let it pass
            if not queue.get_jobs_by_name(CATCH_UP_JOB) and not bot.runtime.engine._lock.locked():
                break
            await asyncio.sleep(0.01)
        reads = 0
        inner = bot.runtime.escalator.next_deadline

        async def counting() -> datetime | None:
            nonlocal reads
            reads += 1
            return await inner()

        bot.runtime.escalator.next_deadline = counting  # type: ignore[method-assign]
        report = await bot.say(REPORTER, "3号楼塔吊配重块松动了")
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        await bot.say(OUTSIDER, "收到")  # answers no hazard: nothing written
        assert reads == 0
        assert "#1" in bot.group_texts()[-1]
        assert len(await bot.events("acknowledged")) == 1

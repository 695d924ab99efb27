"""The escalation engine's timing: a repeating sweep plus one precise wake-up, both from the DB."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from telegram.ext import ContextTypes, Job, JobQueue

from bot.escalator import Escalator, SweepCache
from bot.outbox import OutboxDispatcher
from escalation.clock import Clock

log = logging.getLogger(__name__)

WAKE_JOB = "sitewalk-wake"
SWEEP_JOB = "sitewalk-sweep"
CATCH_UP_JOB = "sitewalk-catch-up"


class EscalationEngine:
    """APScheduler only wakes this; what is due is always read from the hazard rows.

    The sweep is the safety net (a missed or lost timer costs at most one interval); the single
    precise wake-up, re-armed after every change, keeps lateness to milliseconds. A change that
    only adds a deadline (a new report) calls `wake_by`, which compares with the armed time
    instead of asking the database.
    """

    def __init__(
        self,
        service: Escalator,
        dispatcher: OutboxDispatcher,
        clock: Clock,
        *,
        sweep_every: float = 15.0,
        batch: int = 200,
        sweepers: int = 1,
    ) -> None:
        self._service = service
        self._dispatcher = dispatcher
        self._clock = clock
        self._sweep_every = sweep_every
        self._batch = batch
        self._sweepers = sweepers
        self._queue: JobQueue[Any] | None = None
        self._wake: Job[Any] | None = None
        self._armed_for: datetime | None = None
        self._hints = 0  # bumped by wake_by, so an arm() reading at the same time keeps its hint
        self._lock = asyncio.Lock()
        self.caught_up = asyncio.Event()  # set when the first tick (the catch-up) is done
        self._holding = False  # this tick holds the dispatcher back (a backlog)

    def start(self, queue: JobQueue[Any]) -> None:
        """Arm the sweep, and catch up at once on what fell due while we were down."""
        self._queue = queue
        queue.run_repeating(self._on_job, interval=self._sweep_every, name=SWEEP_JOB)
        # PTB's `first=0` does not run a repeating job at once (APScheduler counts its first run
        # from the start date), so catch-up used to wait a whole interval; a one-shot job runs
        # when the scheduler starts, however late that is.
        queue.run_once(
            self._on_job, when=0, name=CATCH_UP_JOB, job_kwargs={"misfire_grace_time": None}
        )

    async def _on_job(self, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.tick()

    async def tick(self) -> int:
        """Apply every passed deadline, hand the outbox to the dispatcher, re-arm the wake-up."""
        async with self._lock:  # the sweep and a wake-up may fire together; one pass is enough
            try:
                return await self._tick()
            finally:
                if self._holding:  # only a hold of its own: a tick never lifts anyone else's
                    self._holding = False
                    self._dispatcher.release()
                self.caught_up.set()

    async def _tick(self) -> int:
        done = 0
        # More than one sweeper only where the database locks rows (SKIP LOCKED gives each
        # its own batch): one renders its next batch while another's is being written.
        cache = SweepCache()  # shared by this tick's batches and sweepers
        results = await asyncio.gather(
            *(self._sweep_all(cache) for _ in range(self._sweepers)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("escalation sweep failed; the next sweep retries", exc_info=result)
            else:
                done += result
        if done:
            self._dispatcher.kick()
        await self.arm()
        return done

    async def _sweep_all(self, cache: SweepCache) -> int:
        done = 0
        while True:
            step = await self._service.sweep(self._batch, cache)
            done += step
            if step == self._batch and not self._holding:
                # A backlog (after downtime): record every step first, then send (see hold).
                self._holding = True
                self._dispatcher.hold()
            if step < self._batch:
                return done

    async def arm(self) -> None:
        """Set the one precise wake-up to the earliest deadline in the database."""
        if self._queue is None:
            return
        hints = self._hints
        try:
            when = await self._service.next_deadline()
        except Exception:
            log.exception("could not read the next deadline; the sweep stays as a net")
            return
        hinted = self._armed_for
        if self._hints != hints and hinted is not None:
            # A deadline committed while we were reading may be missing from what we read.
            when = hinted if when is None else min(when, hinted)
        self._schedule(when)

    async def wake_by(self, when: datetime) -> None:
        """A handler committed a deadline `when`: make sure the wake-up comes no later.

        A wake-up armed earlier and still ahead comes first, and its tick re-reads the rest, so
        nothing is asked of the database. One that is due or firing now is re-read in full.
        """
        if self._queue is None:
            return
        armed = self._armed_for
        if armed is not None and armed <= when:
            if armed > self._clock.now():
                return
            await self.arm()
            return
        self._hints += 1
        self._schedule(when)

    def _schedule(self, when: datetime | None) -> None:
        assert self._queue is not None
        # A one-shot job that already ran is gone from the scheduler: remove by name, not handle.
        for job in self._queue.get_jobs_by_name(WAKE_JOB):
            job.schedule_removal()
        self._wake = None
        self._armed_for = None
        if when is None:
            return
        delay = self._clock.real_seconds_until(when)
        if delay is None:
            return  # a clock that only moves in tests: the tests tick by hand
        self._armed_for = when
        # A hair after the deadline, so that `now >= deadline` holds when the job runs.
        self._wake = self._queue.run_once(self._on_job, when=max(delay, 0.0) + 0.005, name=WAKE_JOB)

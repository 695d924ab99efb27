"""Hot reload of the chain file: on change or on /reload; a bad file is refused and admins told."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot.config import Config, ConfigError, Problem, parse_config
from bot.outbox_rows import enqueue_message
from bot.texts import Texts

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

# A DM stays far below Telegram's 4096 characters however broken the file is.
MAX_PROBLEM_LINES = 15
MAX_PROBLEM_CHARS = 3000


def texts_of(config: Config) -> Texts:
    """The texts in the language the config asks for (a reload may have changed it)."""
    return Texts(config.defaults.language, config.defaults.timezone)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a reload did: the new config was applied, or the file was refused and why."""

    applied: bool
    problems: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()
    projects: int = 0

    def render(self, texts: Texts) -> str:
        if not self.applied:
            return texts.reload("refused", problems=_clip(self.problems))
        out = texts.reload("applied", projects=self.projects)
        if self.restart_needed:
            out += texts.reload("restart", keys=", ".join(self.restart_needed))
        return out


@dataclass(frozen=True, slots=True)
class _Stamp:
    """Enough of a stat to notice an edit, including an editor's write-and-rename."""

    mtime_ns: int
    size: int
    inode: int


@dataclass
class ConfigReloader:
    """Watches the chain file's stat every `every` seconds and applies a valid new version."""

    path: Path
    runtime: Runtime
    every: float = 2.0
    _seen: _Stamp | None = None
    _pending: tuple[_Stamp | None] | None = None  # a change seen once; None: no change seen
    _refused: bool = False
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._seen = _stamp(self.path)  # the version the bot was started with

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="sitewalk-config-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.poll()
            except Exception:  # the watcher must outlive any one bad moment
                log.exception("config watch step failed")

    async def poll(self) -> Outcome | None:
        """One watch step: reload once a changed file has held still for one interval."""
        stamp = await asyncio.to_thread(_stamp, self.path)
        if stamp == self._seen:
            self._pending = None
            return None
        if self._pending != (stamp,):
            # Editors and `cp` write in steps: wait one interval so a half-written file is never
            # read, refused, and reported to the admins for nothing.
            self._pending = (stamp,)
            return None
        return await self.reload()

    async def reload(self, *, asked_by: int | None = None) -> Outcome:
        """Read the file now: apply it if valid; else keep the old config and tell the admins.

        `asked_by` is the admin who sent /reload: the answer goes to them directly, so they get no
        second copy through the outbox.
        """
        stamp = await asyncio.to_thread(_stamp, self.path)
        self._seen, self._pending = stamp, None
        try:
            raw = await asyncio.to_thread(self.path.read_bytes)
            config = parse_config(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, ConfigError) as exc:
            problems = _problems(exc)
            lines = tuple(p.render(str(self.path)) for p in problems)
            log.error("config %s refused, old one kept:\n%s", self.path, "\n".join(lines))
            outcome = Outcome(applied=False, problems=lines)
            await self._tell_admins(outcome, stamp, asked_by, _digest(exc))
            self._refused = True
            return outcome
        restart = self.runtime.apply_config(config)
        log.info(
            "config %s reloaded: %d project(s)%s",
            self.path,
            len(config.projects),
            f"; restart needed for {', '.join(restart)}" if restart else "",
        )
        outcome = Outcome(True, restart_needed=tuple(restart), projects=len(config.projects))
        if self._refused:
            # The admins were told the file was broken; tell them once that it is fixed.
            await self._tell_admins(outcome, stamp, asked_by, hashlib.sha256(raw).hexdigest())
        self._refused = False
        return outcome

    async def _tell_admins(
        self, outcome: Outcome, stamp: _Stamp | None, asked_by: int | None, digest: str
    ) -> None:
        config = self.runtime.config  # after a refusal still the old, valid one
        admins = [a for a in config.admins if a != asked_by]
        if not admins:
            return
        message = outcome.render(texts_of(config))
        version = f"{digest[:16]}:{stamp.mtime_ns if stamp else 0}"
        kind = "applied" if outcome.applied else "refused"
        now = self.runtime.clock.now()
        try:
            async with self.runtime.uow() as uow:
                for admin in admins:
                    enqueue_message(
                        uow,
                        None,
                        f"config_{kind}",
                        admin,
                        message,
                        now,
                        # Two bot processes watching one file see the same version: one DM each.
                        key=f"config:{kind}:{version}:{admin}",
                        recipient=admin,
                    )
                await uow.commit()
        except IntegrityError:
            log.info("admins already told about config version %s", version)
            return
        self.runtime.dispatcher.kick()


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _Stamp(st.st_mtime_ns, st.st_size, st.st_ino)


def _problems(exc: Exception) -> list[Problem]:
    if isinstance(exc, ConfigError):
        return exc.problems
    if isinstance(exc, UnicodeDecodeError):
        return [Problem(None, "", "the file is not UTF-8 text")]
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return [Problem(None, "", f"cannot read the file: {reason}")]


def _digest(exc: Exception) -> str:
    return hashlib.sha256(str(exc).encode("utf-8", "replace")).hexdigest()


def _clip(lines: tuple[str, ...]) -> str:
    shown: list[str] = []
    size = 0
    for line in lines[:MAX_PROBLEM_LINES]:
        if size + len(line) > MAX_PROBLEM_CHARS:
            break
        shown.append(line)
        size += len(line) + 1
    if len(shown) < len(lines):
        shown.append(f"… (+{len(lines) - len(shown)})")
    return "\n".join(shown)


def changes_needing_restart(old: Config, new: Config) -> list[str]:
    """Settings read once at start: a new value is kept in the config but used after a restart."""
    return [
        name
        for name, before, after in (
            ("telegram", old.telegram, new.telegram),
            ("storage", old.storage, new.storage),
        )
        if before != after
    ]


async def on_reload(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload in a private chat: an admin re-reads the chain file now and gets the outcome."""
    rt: Runtime = context.application.bot_data["runtime"]
    user, msg = update.effective_user, update.effective_message
    if user is None or msg is None:
        return
    texts = texts_of(rt.config)
    if user.id not in rt.config.admins:
        await msg.reply_text(texts.reload("not_admin"))
        return
    if rt.reloader is None:
        await msg.reply_text(texts.reload("no_file"))
        return
    outcome = await rt.reloader.reload(asked_by=user.id)
    await msg.reply_text(outcome.render(texts_of(rt.config)))


def register_reload(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """/reload is answered in private chats only: config errors are not for the group."""
    app.add_handler(CommandHandler("reload", on_reload, filters.ChatType.PRIVATE))

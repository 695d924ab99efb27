"""`sitewalk demo`: the Qingjiangpu morning replays offline and tells the story it promises."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import ScaledClock
from bot.demo import Line, _print
from bot.texts import Texts


@pytest.fixture(scope="module")
def replay() -> subprocess.CompletedProcess[str]:
    """One run of `sitewalk demo` at 960x, shared: each run takes 10-15 s."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--speed", "960"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_replays_the_morning_offline_and_escalates(
    replay: subprocess.CompletedProcess[str],
) -> None:
    """The report gets #1, 收到 gets one reminder and reactions, the deadline DMs the supervisors
    with the list of who only typed 收到, and the summary counts escalation DMs, not greetings."""
    done = replay
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert "⚠️ 隐患 #1 已登记" in out
    assert out.count("「收到」不算到场确认") == 1
    assert "👀 (表情回应,不发文字)" in out
    dm = out[out.index("[机器人→私信 监理张工]: 🔺") :]
    assert "只回复了「收到」:项目安全员老王" in dm.split("\n\n")[0]
    assert "升级到第3级" in out
    # The summary counts the escalation DMs (监理张工, 监理李工, 总工程师赵工, and 住建部门刘科 when
    # the replay reaches 11:0x), not the replies to /start printed before them.
    dms = [line for line in out.splitlines() if "[机器人→私信" in line]
    escalations = [line for line in dms if "]: 🔺" in line]
    assert len(escalations) >= 3
    assert len(dms) > len(escalations)
    assert f"升级私信 {len(escalations)} 条" in out
    assert "Traceback" not in done.stderr


def test_the_story_keeps_its_times_however_long_the_set_up_takes(
    replay: subprocess.CompletedProcess[str],
) -> None:
    """The replay's clock waits at 08:59 until the bot is up and has greeted the chain, so the
    report is at 09:00 and each 收到 at its minute, even at 960x on a slow machine (where the
    set-up used to eat half an hour of the story). Progress goes to stderr, not the timeline."""
    done = replay
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("sitewalk demo:")
    assert "09:00  [群] 安全巡查员: 3号楼塔吊配重块松动,存在安全隐患,下面还有工人在干活" in lines
    assert "09:02  [群] 项目安全员老王: 收到" in lines
    assert "09:12  [群] 公司安全员: 收到,已起草书面处罚决定书" in lines
    greetings = [line for line in lines if "你好" in line]
    assert len(greetings) == 5
    assert all(line.startswith("08:59  [机器人→私信") for line in greetings)
    assert "…" not in done.stdout
    assert "  … 09:00" in done.stderr.splitlines()


def test_a_paused_clock_stands_still_until_resumed_then_runs_scaled() -> None:
    """The demo's clock: `start` while paused (and for readings taken then), scaled after."""
    start = datetime(2024, 5, 6, 0, 59, tzinfo=UTC)
    clock = ScaledClock(start, 240.0, paused=True)
    before = time.monotonic()
    time.sleep(0.02)
    assert clock.now() == start
    clock.resume()
    time.sleep(0.05)
    ran = clock.now() - start
    assert timedelta(seconds=0.05 * 240) <= ran < timedelta(seconds=2 * 240)
    assert clock.at_monotonic(before) == start  # a call logged during the set-up
    assert clock.real_seconds_until(start + timedelta(minutes=4)) < 1.0


def test_the_narration_follows_the_language(capsys: pytest.CaptureFixture[str]) -> None:
    """`--language en` narrates in English: labels, the list of who only typed 收到, and the
    counts, which count by who sent a line, not by its label."""
    at = datetime(2024, 5, 6, 1, 30, tzinfo=UTC)
    en = Texts("en", "Asia/Shanghai")
    lines = [
        Line(at, en.demo("in_group", who="监理张工"), "收到"),
        Line(at, en.demo("bot_group"), en.demo("reaction", emoji="👀"), "bot_group"),
        Line(at, en.demo("bot_dm", who="监理李工"), "🔺 Hazard #1 is now yours", "bot_dm"),
        Line(at, en.demo("bot_dm", who="监理李工"), "Hello 监理李工.", "bot_dm"),
    ]
    _print(lines, [en.demo("acked", who="监理张工", at=en.clock(at), text="收到")], en)
    out = capsys.readouterr().out
    assert "09:30  [group] 监理张工: 收到" in out
    assert "09:30  [bot→group]: 👀 (a reaction, no text)" in out
    assert '  - 监理张工 09:30 "收到"' in out
    assert "The bot's messages: in the group 1 (reactions included), escalation DMs 1." in out
    assert "机器人" not in out

"""`sitewalk dry-run`: classification and why, the card, and the schedule the engine really keeps."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Config, parse_config
from bot.dryrun import schedule
from tests.botkit import running_bot
from tests.conftest import CONFIG_TOML, GROUP, REPORTER, T0, Database

ROOT = Path(__file__).parent.parent
REPORT = "3号楼塔吊配重块松动了"
CRITICAL = "3号楼塔吊配重块松动,随时可能掉下来,下面还有人在干活"
WORKING_HOURS = """
[projects.working_hours]
days = ["mon", "tue", "wed", "thu", "fri"]
hours = ["08:00-12:00", "13:00-18:00"]
holidays = "cn"
"""


def dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, at: str, extra: str = ""
) -> tuple[int, str, str]:
    path = tmp_path / "chain.toml"
    path.write_text(CONFIG_TOML + extra, encoding="utf-8")
    code = main(["dry-run", "--config", str(path), "--chat", str(GROUP), "--at", at, text])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(out: str) -> list[str]:
    """The schedule rows, squeezed to single spaces."""
    return [" ".join(line.split()) for line in out.splitlines() if line.startswith("  20")]


def test_normal_report_shows_why_card_and_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A normal report: hazard with its matched rules, the zh card, and every step with its time."""
    code, out, _ = dry_run(tmp_path, capsys, REPORT, "2024-05-06 09:00")
    assert code == 0
    assert "classified as: hazard, category 起重伤害, severity normal" in out
    [why] = [line for line in out.splitlines() if line.startswith("why: ")]
    assert why.startswith("why: model:hazard"), why  # the model's verdict, then what weighed
    assert "object:配重块" in why, why  # and the lexicon's terms
    assert "failure:松动" in why, why
    assert "| ⚠️ 隐患 #1 已登记(起重伤害)" in out
    assert "| 请 项目安全员 安全员老王 在 09:30 前到现场" in out
    assert "a critical report would get x0.5" in out
    assert rows(out) == [
        "2024-05-06 09:00 Mon level 1 called card 安全员老王 (1001)",
        "2024-05-06 09:30 Mon escalated to level 2 DM+notice 监理张工 (1002), 监理李工 (1003)",
        "2024-05-06 10:00 Mon escalated to level 3 DM+notice 总工赵工 (1004)",
        "2024-05-06 11:00 Mon reminder 1/2 level 3 DM 总工赵工 (1004)",
        "2024-05-06 11:30 Mon reminder 2/2 level 3 DM 总工赵工 (1004)",
    ]


def test_critical_report_applies_the_factor_and_dms_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A critical report halves each level's deadline and DMs level 1 with the card."""
    code, out, _ = dry_run(tmp_path, capsys, CRITICAL, "2024-05-06 09:00")
    assert code == 0
    assert "severity critical" in out
    assert "critical: every deadline x0.5, work stops now, level 1 is DMed at once" in out
    assert "| 立即停工,人员撤离危险区域!" in out
    assert rows(out)[:3] == [
        "2024-05-06 09:00 Mon level 1 called DM+card 安全员老王 (1001)",
        "2024-05-06 09:15 Mon escalated to level 2 DM+notice 监理张工 (1002), 监理李工 (1003)",
        "2024-05-06 09:30 Mon escalated to level 3 DM+notice 总工赵工 (1004)",
    ]


def test_working_hours_move_a_friday_evening_report_to_monday(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With working hours, Friday 17:50 + 30m is Monday 08:20; the round-the-clock time is shown."""
    code, out, _ = dry_run(tmp_path, capsys, REPORT, "2024-05-17 17:50", WORKING_HOURS)
    assert code == 0
    assert "working hours: mon–fri 08:00–12:00, 13:00–18:00" in out
    assert rows(out)[:3] == [
        "2024-05-17 17:50 Fri level 1 called card 安全员老王 (1001)",
        "2024-05-20 08:20 Mon 05-17 18:20 escalated to level 2 DM+notice 监理张工 (1002), 监理李工 (1003)",
        "2024-05-20 08:50 Mon 05-17 18:50 escalated to level 3 DM+notice 总工赵工 (1004)",
    ]
    # The card names the date: a bare 08:20 would read as this morning.
    assert "在 05-20 08:20 前到现场" in out
    _, out, _ = dry_run(tmp_path, capsys, REPORT, "2024-05-16 17:50", WORKING_HOURS)
    assert "在 明天 08:20 前到现场" in out
    _, out, _ = dry_run(tmp_path, capsys, REPORT, "2024-05-16 09:00", WORKING_HOURS)
    assert "在 09:30 前到现场" in out


def test_public_holiday_and_make_up_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before Labour Day 2024 the next step waits until 05-06; the 调休 Saturday 05-11 works."""
    _, out, _ = dry_run(tmp_path, capsys, REPORT, "2024-04-30 17:50", WORKING_HOURS)
    assert rows(out)[1].startswith("2024-05-06 08:20 Mon 04-30 18:20 escalated to level 2")
    _, out, _ = dry_run(tmp_path, capsys, REPORT, "2024-05-10 17:50", WORKING_HOURS)
    assert rows(out)[1].startswith("2024-05-11 08:20 Sat 05-10 18:20 escalated to level 2")


def test_critical_report_ignores_working_hours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A critical report on Friday evening escalates that evening, working hours or not."""
    _, out, _ = dry_run(tmp_path, capsys, CRITICAL, "2024-05-17 17:50", WORKING_HOURS)
    assert "working hours do not apply" in out
    assert rows(out)[1].startswith("2024-05-17 18:05 Fri escalated to level 2")


def test_chatter_registers_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A text that is not a hazard says so and shows no card or schedule."""
    code, out, _ = dry_run(tmp_path, capsys, "收到", "2024-05-06 09:00")
    assert code == 0
    assert "classified as: ack" in out
    assert "nothing would be registered" in out
    assert "card" not in out
    assert rows(out) == []


def test_unknown_chat_and_bad_time_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown chat id and an unreadable --at exit 2 with one line, naming what is wrong."""
    path = tmp_path / "chain.toml"
    path.write_text(CONFIG_TOML, encoding="utf-8")
    assert main(["dry-run", "--config", str(path), "--chat", "-42", REPORT]) == 2
    assert f"no project has chat_id -42 (known: {GROUP})" in capsys.readouterr().err
    args = ["dry-run", "--config", str(path), "--chat", str(GROUP), "--at", "tomorrow", REPORT]
    assert main(args) == 2
    assert '--at \'tomorrow\': write local time as "YYYY-MM-DD HH:MM"' in capsys.readouterr().err


def test_dry_run_from_the_shell_without_at() -> None:
    """The installed command works as in the README, on the example config, at the current time."""
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "dry-run", "--config", "config.example.toml",
         "--chat", "-1001234567890", REPORT],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "escalated to level 3" in result.stdout
    assert "Traceback" not in result.stderr


async def test_schedule_is_what_the_running_bot_does(config: Config, database: Database) -> None:
    """Each dry-run step happens in the real bot at exactly its time, and not a second earlier."""
    _, steps = schedule(config, config.projects[0], critical=False, now=T0)
    assert len(steps) == 5
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        state = (1, 0)
        for step in steps[1:]:
            await bot.advance(step.at - timedelta(seconds=1) - bot.clock.now())
            [hazard] = await bot.hazards()
            assert (hazard.level, hazard.repeats) == state
            await bot.advance(timedelta(seconds=1))
            [hazard] = await bot.hazards()
            state = (step.call.level, step.call.repeat or 0)
            assert (hazard.level, hazard.repeats) == state


def test_at_is_local_time_in_the_configured_zone() -> None:
    """--at is read in [defaults] timezone: 09:00 in Shanghai is 01:00 UTC."""
    from bot.dryrun import parse_at

    assert parse_at("2024-05-06 09:00", "Asia/Shanghai") == T0
    assert parse_at("2024-05-06 09:00", "UTC") == datetime(2024, 5, 6, 9, tzinfo=UTC)
    assert parse_config(CONFIG_TOML).defaults.timezone == "Asia/Shanghai"

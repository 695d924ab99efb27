"""`sitewalk demo`: the Qingjiangpu morning replays offline and tells the story it promises."""

from __future__ import annotations

import subprocess
import sys


def test_demo_replays_the_morning_offline_and_escalates() -> None:
    """The report gets #1, 收到 gets one reminder and reactions, the deadline DMs the supervisors
    with the list of who only typed 收到, and the summary counts escalation DMs, not greetings."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--speed", "960"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
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

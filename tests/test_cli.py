"""The command line as users run it: check-config, classify, and `sitewalk run` over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config
from bot.sandbox import LocalBotApi
from tests.botkit import people
from tests.conftest import CONFIG_TOML, GROUP, REPORTER

ROOT = Path(__file__).parent.parent


def sitewalk(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )


def test_example_config_validates() -> None:
    """config.example.toml is valid and has a three-level chain."""
    config = load_config(ROOT / "config.example.toml")
    assert [len(p.chain) for p in config.projects] == [3]
    result = sitewalk("check-config", str(ROOT / "config.example.toml"))
    assert result.returncode == 0, result.stderr
    assert "项目安全员" in result.stdout


def test_check_config_rejects_with_exit_2_and_file_prefixed_lines(tmp_path: Path) -> None:
    """An invalid file exits 2 with `FILE:LINE: key: message` lines and no traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text('admins = ["x"]\n[[projects]]\nname = "a"\nchat_id = 1\n', encoding="utf-8")
    result = sitewalk("check-config", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines
    assert all(line.startswith(f"{bad}:") for line in lines)
    assert "Traceback" not in result.stderr
    assert any("projects" in line and "chain" in line for line in lines)


def test_check_config_syntax_error_and_missing_file(tmp_path: Path) -> None:
    """A TOML syntax error and an unreadable file are both exit 2, one line each."""
    bad = tmp_path / "syntax.toml"
    bad.write_text("admins = [1,\n[[projects]\n", encoding="utf-8")
    result = sitewalk("check-config", str(bad))
    assert result.returncode == 2
    assert "TOML syntax" in result.stderr
    missing = sitewalk("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_classify_follows_the_jsonl_contract() -> None:
    """One JSON object per non-blank input line, with exactly the contract's keys."""
    result = sitewalk("classify", stdin="塔吊配重块松动了\n\n收到!!\n明天几点开会\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["kind"] for r in rows] == ["hazard", "ack", "other"]
    for row in rows:
        assert set(row) == {"text", "kind", "category", "severity", "matched"}
    assert rows[0]["matched"]


@pytest.mark.parametrize("verbose", [False, True])
async def test_run_answers_a_hazard_over_http_and_stops_on_sigterm(
    tmp_path: Path, verbose: bool
) -> None:
    """`sitewalk run` polls a Bot API, cards a hazard, exits 0 on SIGTERM, never logs the token."""
    async with LocalBotApi() as api:
        people(api)
        config = tmp_path / "sitewalk.toml"
        config.write_text(
            CONFIG_TOML.replace(
                "admins = [111111111]",
                f'admins = [111111111]\n[telegram]\napi_base_url = "{api.root}"\n'
                f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"',
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "SITEWALK_TOKEN": api.token}
        args = ["-m", "bot.cli", "run", "--config", str(config)] + (["-v"] if verbose else [])
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls), 30)
            api.post_text(GROUP, REPORTER, "塔吊配重块松动了")
            [card] = await api.wait_sent(GROUP, 1, timeout=15)
            assert "#1" in card["text"]
        finally:
            proc.send_signal(signal.SIGTERM)
            # Read while waiting: a verbose run writes more than the pipe's reader buffers,
            # and then the exit is never seen (the process had exited 0 with its output unread).
            raw, _ = await asyncio.wait_for(proc.communicate(), 30)
        output = raw.decode()
        code = proc.returncode
        assert code == 0, output
        assert api.token not in output
        assert api.token.split(":")[1] not in output
        assert "Unclosed" not in output  # the Bot API client's HTTP sessions were closed


def test_run_without_token_is_a_clear_error(tmp_path: Path) -> None:
    """A missing token env var is exit 2 with one line naming the variable, no traceback."""
    config = tmp_path / "c.toml"
    config.write_text(CONFIG_TOML, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SITEWALK_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False,
    )
    assert result.returncode == 2
    assert "SITEWALK_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        (None, "SITEWALK_WEBHOOK_SECRET is empty: webhook mode needs a secret"),
        ("has spaces and ü", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -"),
    ],
)
def test_webhook_mode_without_a_usable_secret_is_a_clear_error(
    tmp_path: Path, secret: str | None, said: str
) -> None:
    """Webhook mode needs a secret_token Telegram accepts: else exit 2, one line, no traceback,
    before anything is started (a webhook anyone could post to would take forged evidence)."""
    config = tmp_path / "c.toml"
    config.write_text(
        CONFIG_TOML.replace(
            "admins = [111111111]",
            'admins = [111111111]\n[telegram]\nmode = "webhook"\n'
            '[telegram.webhook]\nurl = "https://bot.example.com/sitewalk"',
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "SITEWALK_WEBHOOK_SECRET"}
    env["SITEWALK_TOKEN"] = "7000000001:AAsecret-half"
    if secret is not None:
        env["SITEWALK_WEBHOOK_SECRET"] = secret
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False,
    )
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert "telegram.webhook.secret_env" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _run_config(tmp_path: Path, api_root: str) -> Path:
    config = tmp_path / "sitewalk.toml"
    config.write_text(
        CONFIG_TOML.replace(
            "admins = [111111111]",
            f'admins = [111111111]\n[telegram]\napi_base_url = "{api_root}"\n'
            f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"',
        ),
        encoding="utf-8",
    )
    return config


async def _run_cli(config: Path, token: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--config", str(config),
        env={**os.environ, "SITEWALK_TOKEN": token}, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def test_run_with_a_token_telegram_refuses_is_one_clear_line(tmp_path: Path) -> None:
    """A wrong token: exit 1, one line naming the variable, no traceback, the token not shown."""
    async with LocalBotApi() as api:
        wrong = "7000000001:AAwrong-token-secret-half"
        code, output = await _run_cli(_run_config(tmp_path, api.root), wrong)
        assert code == 1, output
        assert "refused the token in SITEWALK_TOKEN" in output
        assert "Traceback" not in output
        assert wrong.split(":")[1] not in output
        assert [c.method for c in api.calls] == ["getMe"]  # nothing else was tried


async def test_run_with_an_unreachable_bot_api_is_one_clear_line(tmp_path: Path) -> None:
    """Nothing listens at api_base_url: exit 1, the URL named, no traceback, nothing left open."""
    from tests.test_webhook import free_port

    root = f"http://127.0.0.1:{free_port()}"
    code, output = await _run_cli(_run_config(tmp_path, root), "7000000001:AAsecret-half")
    assert code == 1, output
    assert f"cannot reach the Bot API at {root}" in output
    assert "Traceback" not in output
    assert "Unclosed" not in output  # the HTTP sessions were closed, not left to the collector
    assert "AAsecret-half" not in output

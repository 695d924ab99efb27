"""The benchmark harness's own bookkeeping: what it reads off the local Bot API's call log."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from benchmarks.common import Figure, level_member, paired_medians
from benchmarks.ingest import worse_of
from benchmarks.lateness import SentDms
from benchmarks.outbound import max_in_window, rates
from bot.sandbox import ApiCall, LocalBotApi


def _log(calls: list[ApiCall]) -> LocalBotApi:
    return cast(LocalBotApi, SimpleNamespace(calls=calls))


def _dm(group: int, number: int, at: float, status: int = 0) -> ApiCall:
    params: dict[str, Any] = {"chat_id": level_member(group, 2), "text": f"#{number} 已超时"}
    return ApiCall("sendMessage", params, at, status)


def test_a_pending_long_poll_holds_back_no_dm_answered_after_it() -> None:
    poll = ApiCall("getUpdates", {"timeout": 10}, 0.0)  # still waiting for updates
    late = _dm(1, 7, 2.0)  # sent, not answered yet
    calls = [poll, _dm(0, 3, 1.0, status=200), late]
    dms = SentDms(_log(calls), groups=2)

    assert dms.update() == {(0, 3): 1.0}

    late.status = 200
    poll.status = 200
    calls.append(_dm(1, 8, 3.0, status=200))
    assert dms.update() == {(0, 3): 1.0, (1, 7): 2.0, (1, 8): 3.0}
    assert dms.update() == {(0, 3): 1.0, (1, 7): 2.0, (1, 8): 3.0}


def test_refused_dms_and_other_chats_are_not_counted_as_sent() -> None:
    refused = _dm(0, 1, 1.0, status=403)
    level3 = ApiCall("sendMessage", {"chat_id": level_member(0, 3), "text": "#2"}, 1.5, 200)
    dms = SentDms(_log([refused, level3, _dm(0, 3, 2.0, status=200)]), groups=1)
    assert dms.update() == {(0, 3): 2.0}


def test_outbound_rates_count_sent_messages_by_window_and_group() -> None:
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    calls = [
        ApiCall("sendMessage", {"chat_id": -100}, t, 200) for t in (0.0, 10.0, 59.9, 60.0)
    ]
    calls += [
        ApiCall("sendMessage", {"chat_id": -200}, 0.5, 429),  # refused: never delivered
        ApiCall("setMessageReaction", {"chat_id": -200}, 0.6, 200),  # not a message
        ApiCall("sendMessage", {"chat_id": 42}, 0.7, 200),  # a DM: overall only
    ]
    assert rates(calls) == (2, 3, 5)


def test_a_ratio_is_the_median_of_the_pairs_not_a_ratio_of_medians() -> None:
    """The rounds of one full run's ingest on PostgreSQL, where the host slowed for the no-op
    bot's rounds: each pair reads 0.43-0.64, the median pair 0.463; the medians' ratio, 0.501,
    paired a slow baseline with a fast measured run."""
    baselines, values = [4450.0, 5179.0, 4419.0], [2061.0, 2230.0, 2819.0]
    baseline, value, ratio = paired_medians(baselines, values)
    assert (baseline, value) == (4450.0, 2230.0)
    assert round(ratio, 3) == 0.463
    assert round(value / baseline, 3) == 0.501


def test_ingest_is_the_database_with_the_lower_ratio_and_met_only_if_both_are() -> None:
    def per_db(kind: str, value: float, baseline: float) -> Figure:
        ratio = value / baseline
        return Figure(f"ingest_{kind}", value, "updates/s", baseline, ratio, met=ratio >= 0.5)

    figure = worse_of([per_db("sqlite", 3600.0, 6000.0), per_db("postgresql", 2900.0, 6100.0)])
    assert figure.to_json() == {
        "name": "ingest",
        "value": 2900.0,
        "unit": "updates/s",
        "baseline": 6100.0,
        "ratio": 0.4754,
    }
    assert figure.met is False
    assert "postgresql's figure" in figure.note
    figure = worse_of([per_db("sqlite", 3000.0, 5900.0), per_db("postgresql", 3300.0, 6000.0)])
    assert (figure.value, figure.met) == (3000.0, True)
    assert "sqlite's figure" in figure.note

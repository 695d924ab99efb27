"""Every text users see, Chinese and English side by side, rendered without Telegram."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from escalation.evidence import Refusal

_T: dict[str, dict[str, str]] = {
    "card": {
        "zh": "⚠️ 隐患 #{n} 已登记{category}\n「{text}」\n请 {role} {people} 在 {deadline} 前到现场,"
        "回复照片或位置确认。「收到」不算到场。",
        "en": '⚠️ Hazard #{n} registered{category}\n"{text}"\n{role} {people}: go to the site '
        'before {deadline} and reply with a photo or your location. "Noted" does not count.',
    },
    "card_critical": {
        "zh": "🛑 紧急隐患 #{n}{category}\n「{text}」\n立即停工,人员撤离危险区域!\n请 {role} {people} "
        "在 {deadline} 前到现场,回复照片或位置确认。",
        "en": '🛑 Critical hazard #{n}{category}\n"{text}"\nStop work and clear the area now!\n'
        "{role} {people}: be on site before {deadline} and reply with a photo or your location.",
    },
    "ack_reminder": {
        "zh": "「收到」不算到场确认:请到现场后回复照片或位置,#{n} 还剩 {left}",
        "en": '"Noted" is not a site visit: reply with a photo or location from the site. '
        "#{n} has {left} left",
    },
    "on_site": {
        "zh": "✅ #{n} {who} 已到现场({how}),计时停止。",
        "en": "✅ #{n} {who} is on site ({how}); the clock is stopped.",
    },
    "dm_escalation": {
        "zh": "🔺 隐患 #{n}({project})已升级到你:{role}\n「{text}」\n报告人:{reporter},{opened}\n"
        "自 {overdue} 起超时,无人到场。{skipped}\n已通知:{told}\n只回复了「收到」:{acked}\n"
        "请到现场,或安排人员到场后在群里回复照片或位置。",
        "en": '🔺 Hazard #{n} ({project}) is now yours: {role}\n"{text}"\nReported by {reporter} '
        "at {opened}\nOverdue since {overdue}; nobody went to the site. {skipped}\nAlready told: "
        '{told}\nOnly typed "noted": {acked}\nGo to the site, or send someone, and reply in the '
        "group with a photo or location.",
    },
    "dm_repeat": {
        "zh": "⏰ 提醒({k}/{of}):隐患 #{n}({project})仍无人到场。\n「{text}」\n自 {overdue} 起超时。"
        "\n只回复了「收到」:{acked}",
        "en": '⏰ Reminder ({k}/{of}): hazard #{n} ({project}) still has nobody on site.\n"{text}"\n'
        'Overdue since {overdue}.\nOnly typed "noted": {acked}',
    },
    "dm_critical": {
        "zh": "🛑 紧急隐患 #{n}({project}),你是第1级:{role}\n「{text}」\n请立即叫停施工并到现场,"
        "在 {deadline} 前回复照片或位置。",
        "en": '🛑 Critical hazard #{n} ({project}); you are level 1: {role}\n"{text}"\nStop the work '
        "and go to the site; reply with a photo or location before {deadline}.",
    },
    "skipped": {
        "zh": "服务中断期间跳过了第 {levels} 级。",
        "en": "Level {levels} was skipped while the service was down.",
    },
    "group_escalated": {
        "zh": "🔺 #{n} 已超时,升级到第{level}级:{role} {people}{unreachable}",
        "en": "🔺 #{n} is overdue; escalated to level {level}: {role} {people}{unreachable}",
    },
    "group_repeat": {
        "zh": "⏰ #{n} 仍无人到场,已再次提醒 {role}({k}/{of})。",
        "en": "⏰ #{n} still has nobody on site; {role} reminded again ({k}/{of}).",
    },
    "unreachable": {
        "zh": "\n无法私信 {people}:请点击 {link} 启用机器人。",
        "en": "\nCannot DM {people}: please open {link} and press Start.",
    },
    "started": {
        "zh": "你好,{name}。已记录:超时升级时我会私信你。",
        "en": "Hello {name}. Noted: I will message you when a hazard is escalated to you.",
    },
    "nobody": {"zh": "无", "en": "nobody"},
    "refused": {"zh": "未计入到场:{reason}", "en": "Not counted as a site visit: {reason}"},
    "left": {"zh": "{m} 分钟", "en": "{m} min"},
    "overdue_now": {"zh": "已超时", "en": "overdue"},
}

_REFUSALS: dict[Refusal, dict[str, str]] = {
    Refusal.FORWARDED: {"zh": "转发的照片或位置不算", "en": "forwarded media does not count"},
    Refusal.REUSED_PHOTO: {"zh": "这张照片已被用作证据", "en": "this photo was already used"},
    Refusal.OUTSIDE_SITE: {"zh": "位置不在工地范围内", "en": "the location is outside the site"},
    Refusal.VENUE: {
        "zh": "地图选点不算,请发送实时位置",
        "en": "a place picked on a map does not count; share your live location",
    },
    Refusal.NOT_IN_CHAIN: {
        "zh": "你不在本隐患的责任链上,已作为补充信息记录",
        "en": "you are not in this hazard's chain; kept as extra information",
    },
}


@dataclass(frozen=True, slots=True)
class Texts:
    """Renders texts in one language and one timezone."""

    language: str
    timezone: str

    def _t(self, key: str, **values: object) -> str:
        return _T[key][self.language].format(**values)

    def clock(self, when: datetime) -> str:
        return when.astimezone(ZoneInfo(self.timezone)).strftime("%H:%M")

    def stamp(self, when: datetime) -> str:
        return when.astimezone(ZoneInfo(self.timezone)).strftime("%m-%d %H:%M")

    def people(self, labels: Sequence[str]) -> str:
        return (
            "、".join(labels)
            if self.language == "zh" and labels
            else (", ".join(labels) if labels else self._t("nobody"))
        )

    def left(self, delta: timedelta) -> str:
        minutes = int(delta.total_seconds() // 60)
        return self._t("left", m=minutes) if minutes > 0 else self._t("overdue_now")

    def card(
        self,
        *,
        number: int,
        text: str,
        category: str | None,
        critical: bool,
        role: str,
        people: Sequence[str],
        deadline: datetime,
    ) -> str:
        cat = (
            f"({category})"
            if category and self.language == "zh"
            else (f" ({category})" if category else "")
        )
        return self._t(
            "card_critical" if critical else "card",
            n=number,
            text=_quote(text),
            category=cat,
            role=role,
            people=self.people(people),
            deadline=self.clock(deadline),
        )

    def ack_reminder(self, *, number: int, left: timedelta) -> str:
        return self._t("ack_reminder", n=number, left=self.left(left))

    def on_site(self, *, number: int, who: str, how: str) -> str:
        return self._t("on_site", n=number, who=who, how=how)

    def refused(self, reason: Refusal) -> str:
        return self._t("refused", reason=_REFUSALS[reason][self.language])

    def dm_escalation(
        self,
        *,
        number: int,
        project: str,
        role: str,
        text: str,
        reporter: str,
        opened: datetime,
        overdue: datetime,
        skipped: Sequence[int],
        told: Sequence[str],
        acked: Sequence[str],
    ) -> str:
        skipped_text = (
            self._t("skipped", levels="、".join(str(k) for k in skipped)) if skipped else ""
        )
        return self._t(
            "dm_escalation",
            n=number,
            project=project,
            role=role,
            text=_quote(text),
            reporter=reporter,
            opened=self.clock(opened),
            overdue=self.clock(overdue),
            skipped=skipped_text,
            told=self.people(told),
            acked=self.people(acked),
        ).replace(" \n", "\n")

    def dm_repeat(
        self,
        *,
        number: int,
        project: str,
        text: str,
        overdue: datetime,
        k: int,
        of: int,
        acked: Sequence[str],
    ) -> str:
        return self._t(
            "dm_repeat",
            n=number,
            project=project,
            text=_quote(text),
            overdue=self.clock(overdue),
            k=k,
            of=of,
            acked=self.people(acked),
        )

    def dm_critical(
        self, *, number: int, project: str, role: str, text: str, deadline: datetime
    ) -> str:
        return self._t(
            "dm_critical",
            n=number,
            project=project,
            role=role,
            text=_quote(text),
            deadline=self.clock(deadline),
        )

    def group_unreachable(self, *, people: Sequence[str], start_link: str) -> str:
        """A DM was refused by someone we could reach before (they blocked the bot)."""
        return self._t("unreachable", people=self.people(people), link=start_link).strip()

    def group_escalated(
        self,
        *,
        number: int,
        level: int,
        role: str,
        people: Sequence[str],
        unreachable: Sequence[str],
        start_link: str,
    ) -> str:
        extra = (
            self._t("unreachable", people=self.people(unreachable), link=start_link)
            if unreachable
            else ""
        )
        return self._t(
            "group_escalated",
            n=number,
            level=level,
            role=role,
            people=self.people(people),
            unreachable=extra,
        )

    def group_repeat(self, *, number: int, role: str, k: int, of: int) -> str:
        return self._t("group_repeat", n=number, role=role, k=k, of=of)

    def started(self, *, name: str) -> str:
        return self._t("started", name=name)


def _quote(text: str, limit: int = 300) -> str:
    """Quote a report, shortened so that a card or DM stays far below Telegram's 4096."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

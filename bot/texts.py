"""Every text users see, Chinese and English side by side, rendered without Telegram."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from escalation.evidence import Refusal

LANGUAGES = ("zh", "en")  # every text has both; the first is the default

_T: dict[str, dict[str, str]] = {
    "card": {
        "zh": "⚠️ 隐患 #{n} 已登记{category}\n「{text}」\n请 {called} 在 {deadline} 前到现场,"
        "回复照片或位置确认。「收到」不算到场。",
        "en": '⚠️ Hazard #{n} registered{category}\n"{text}"\n{called}: go to the site '
        'before {deadline} and reply with a photo or your location. "Noted" does not count.',
    },
    "card_critical": {
        "zh": "🛑 紧急隐患 #{n}{category}\n「{text}」\n立即停工,人员撤离危险区域!\n请 {called} "
        "在 {deadline} 前到现场,回复照片或位置确认。",
        "en": '🛑 Critical hazard #{n}{category}\n"{text}"\nStop work and clear the area now!\n'
        "{called}: be on site before {deadline} and reply with a photo or your location.",
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
        "请到现场:回复这条私信,或在群里,发照片或位置。也可用下面的按钮。",
        "en": '🔺 Hazard #{n} ({project}) is now yours: {role}\n"{text}"\nReported by {reporter} '
        "at {opened}\nOverdue since {overdue}; nobody went to the site. {skipped}\nAlready told: "
        '{told}\nOnly typed "noted": {acked}\nGo to the site and send a photo or location, as a '
        "reply to this message or in the group. The buttons below say what you are doing.",
    },
    "dm_repeat": {
        "zh": "⏰ 提醒({k}/{of}):隐患 #{n}({project})仍无人到场。\n「{text}」\n自 {overdue} 起超时。"
        "\n只回复了「收到」:{acked}",
        "en": '⏰ Reminder ({k}/{of}): hazard #{n} ({project}) still has nobody on site.\n"{text}"\n'
        'Overdue since {overdue}.\nOnly typed "noted": {acked}',
    },
    "tomorrow": {"zh": "明天 {t}", "en": "tomorrow {t}"},
    "dm_critical": {
        "zh": "🛑 紧急隐患 #{n}({project}),你是第1级:{role}\n「{text}」\n请立即叫停施工并到现场,"
        "在 {deadline} 前回复这条私信或在群里发照片或位置。",
        "en": '🛑 Critical hazard #{n} ({project}); you are level 1: {role}\n"{text}"\nStop the work '
        "and go to the site; before {deadline}, reply here or in the group with a photo or location.",
    },
    "skipped": {
        "zh": "服务中断期间跳过了第 {levels} 级。",
        "en": "Level {levels} was skipped while the service was down.",
    },
    "group_escalated": {
        "zh": "🔺 #{n} 已超时,升级到第{level}级:{called}{unreachable}",
        "en": "🔺 #{n} is overdue; escalated to level {level}: {called}{unreachable}",
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
    "refused": {"zh": "未计入到场:{reason}", "en": "Not counted as a visit: {reason}"},
    "left": {"zh": "{m} 分钟", "en": "{m} min"},
    "overdue_now": {"zh": "已超时", "en": "overdue"},
    # ---- evidence ----
    "refused_distance": {"zh": "(距工地约 {d} 米)", "en": " (about {d} m away)"},
    "how_photo": {"zh": "照片", "en": "photo"},
    "how_location": {"zh": "位置", "en": "location"},
    "how_live": {"zh": "实时位置", "en": "live location"},
    "how_dm": {"zh": "{how},私信提交", "en": "{how}, sent by DM"},
    "ask_which": {
        "zh": "这条{what}是哪个隐患的到场证据?请选择:",
        "en": "Which hazard is this {what} for? Please choose:",
    },
    "ask_chosen": {"zh": "已选择 #{n}", "en": "Chosen: #{n}"},
    "ask_not_yours": {
        "zh": "只有发送者本人可以选择。",
        "en": "Only the person who sent it can choose.",
    },
    "ask_done": {"zh": "这条已经处理过了。", "en": "This one was already handled."},
    "no_such_hazard": {"zh": "本群没有隐患 #{n}。", "en": "There is no hazard #{n} in this group."},
    "dm_evidence_hint": {
        "zh": "要提交到场证据,请「回复」我发给你的那条隐患私信,附上照片或位置。",
        "en": "To send site evidence, reply to my hazard message with a photo or location.",
    },
    "dm_on_site": {
        "zh": "✅ 已收到,#{n} 计时停止,群里已通知。",
        "en": "✅ Received: #{n}'s clock is stopped and the group is told.",
    },
    # ---- commands ----
    "state_open": {"zh": "待到场", "en": "waiting"},
    "state_on_site": {"zh": "已到场", "en": "on site"},
    "state_rectified": {"zh": "已整改", "en": "rectified"},
    "state_closed": {"zh": "已关闭", "en": "closed"},
    "state_dismissed": {"zh": "已撤销", "en": "dismissed"},
    "hazards_head": {"zh": "进行中的隐患({k} 个):", "en": "Active hazards ({k}):"},
    "hazards_none": {"zh": "目前没有进行中的隐患。", "en": "No active hazards."},
    "hazard_line": {
        "zh": "#{n} {state} · 第{level}级 {role} · {left} · 「{text}」",
        "en": '#{n} {state} · level {level} {role} · {left} · "{text}"',
    },
    "left_rectify": {"zh": "整改还剩 {left}", "en": "{left} left to rectify"},
    "timeline_head": {
        "zh": "隐患 #{n}({state},第{level}级)\n「{text}」",
        "en": 'Hazard #{n} ({state}, level {level})\n"{text}"',
    },
    "timeline_acked": {
        "zh": "只回复了「收到」:{people}",
        "en": 'Only typed "noted": {people}',
    },
    "usage_hazard": {
        "zh": "用法:/hazard 编号,例如 /hazard 3",
        "en": "Usage: /hazard NUMBER, e.g. /hazard 3",
    },
    "chain_head": {"zh": "责任链 · {project}", "en": "Responsibility chain · {project}"},
    "chain_level": {
        "zh": "第{k}级 {role}({deadline}):{people}",
        "en": "Level {k} {role} ({deadline}): {people}",
    },
    "chain_ok": {"zh": "{who} ✅", "en": "{who} ✅"},
    "chain_no": {"zh": "{who} ❌", "en": "{who} ❌"},
    "chain_legend": {
        "zh": "✅ 可以私信 ❌ 还不能私信",
        "en": "✅ can be DMed ❌ cannot be DMed yet",
    },
    "chain_start": {
        "zh": "❌ 的人请打开 {link} 并点「开始」,超时升级时才能收到私信。",
        "en": "People marked ❌: open {link} and press Start, or escalations cannot reach you.",
    },
    "dismissed": {
        "zh": "❎ #{n} 已撤销(误报),{who}:{reason}",
        "en": "❎ #{n} dismissed as a false alarm by {who}: {reason}",
    },
    "usage_report": {
        "zh": "用法:/report 隐患内容,或回复一条消息发 /report,把它登记为隐患。",
        "en": "Usage: /report WHAT IS WRONG, or reply /report to a message to register it.",
    },
    "usage_dismiss": {
        "zh": "用法:/dismiss 编号 原因,例如 /dismiss 3 看错了楼号",
        "en": "Usage: /dismiss NUMBER REASON, e.g. /dismiss 3 wrong building",
    },
    "dismiss_denied": {
        "zh": "只有报告人或管理员可以撤销 #{n}。",
        "en": "Only the reporter or an admin can dismiss #{n}.",
    },
    "dismiss_state": {
        "zh": "#{n} 当前{state},不能撤销。",
        "en": "#{n} is {state} and cannot be dismissed.",
    },
    "ids": {
        "zh": "本群 chat_id:{chat}\n你的 user id:{user}\n写进配置文件:\n"
        '[[projects]]\nname = "{title}"\nchat_id = {chat}',
        "en": "This chat's chat_id: {chat}\nYour user id: {user}\nFor the config file:\n"
        '[[projects]]\nname = "{title}"\nchat_id = {chat}',
    },
    "help_group": {
        "zh": "实地走:群里报告隐患,我登记为 #N 并通知责任人。\n"
        "「收到」不算到场:到现场后回复照片或位置(回复隐患消息,或写上 #N)。\n"
        "/hazards 进行中的隐患\n/hazard N 某个隐患的全部记录\n/chain 责任链和谁能收到私信\n"
        "/report 内容 登记我没认出的隐患(或回复那条消息)\n"
        "/dismiss N 原因 撤销误报(报告人或管理员)\n/id 本群和你的 id",
        "en": "sitewalk: report a hazard here and I register it as #N and call the people "
        'responsible.\n"Noted" is not a visit: on site, reply with a photo or location (to the '
        "hazard message, or with #N).\n/hazards active hazards\n/hazard N one hazard's full "
        "record\n/chain the chain and who can be DMed\n/report what: a hazard I did not "
        "recognise (or reply /report to it)\n/dismiss N reason: a false alarm "
        "(reporter or admin)\n/id this chat's and your ids",
    },
    "help_dm": {
        "zh": "我会在隐患升级到你时私信你。\n到现场后,回复那条私信发照片或位置即可。\n"
        "/mine 等你处理的隐患\n/start 启用私信",
        "en": "I message you when a hazard is escalated to you.\nOn site, reply to that message "
        "with a photo or location.\n/mine hazards waiting for you\n/start enable messages",
    },
    "start_bound": {
        "zh": "你好,{name}。已绑定项目「{project}」,你的角色:{roles}。隐患升级到你时我会私信你。",
        "en": "Hello {name}. You are linked to {project} as {roles}. I will message you when a "
        "hazard is escalated to you.",
    },
    "start_outside": {
        "zh": "你好,{name}。已绑定项目「{project}」,但你还不在责任链上。"
        "如需加入,请把你的 user id {user} 交给管理员。",
        "en": "Hello {name}. You are linked to {project} but not in its chain yet. To be added, "
        "give the admin your user id {user}.",
    },
    "start_bad_link": {
        "zh": "你好,{name}。这个链接对应的项目不存在(可能已更改);已为你启用私信。",
        "en": "Hello {name}. That link's project does not exist (it may have changed); "
        "messages are enabled for you.",
    },
    "role_at": {"zh": "{role}(第{k}级)", "en": "{role} (level {k})"},
    "mine_head": {"zh": "等你处理的隐患({k} 个):", "en": "Hazards waiting for you ({k}):"},
    "mine_none": {"zh": "目前没有等你处理的隐患。", "en": "No hazards are waiting for you."},
    "mine_line": {
        "zh": "#{n} {project} · 第{level}级 · {left} · 「{text}」",
        "en": '#{n} {project} · level {level} · {left} · "{text}"',
    },
    "page": {"zh": "第 {k}/{of} 页", "en": "page {k}/{of}"},
    "page_prev": {"zh": "‹ 上一页", "en": "‹ previous"},
    "page_next": {"zh": "下一页 ›", "en": "next ›"},
    "page_gone": {"zh": "这一页已经没有内容了。", "en": "This page is empty now."},
    # ---- escalation DM buttons ----
    "btn_going": {"zh": "我去现场", "en": "I'm going"},
    "btn_delegated": {"zh": "已安排人员", "en": "Someone is sent"},
    "btn_stop": {"zh": "叫停施工", "en": "Stop the work"},
    "going": {
        "zh": "🚶 #{n} {who} 正在前往现场。",
        "en": "🚶 #{n} {who} is on the way to the site.",
    },
    "going_ok": {"zh": "已记录,群里已通知。", "en": "Recorded; the group is told."},
    "delegated_ok": {
        "zh": "已记录。计时不会停:到场的人回复照片或位置后才算到场。",
        "en": "Recorded. The clock keeps running until someone on site sends a photo or location.",
    },
    "stop_order": {
        "zh": "🛑 停工令 #{n}:{who}({role})要求立即停止相关作业,人员撤离危险区域。\n「{text}」",
        "en": "🛑 Stop-work order #{n}: {who} ({role}) orders the work stopped and the area "
        'cleared now.\n"{text}"',
    },
    "stop_ok": {"zh": "停工令已发到群里。", "en": "The stop-work order is posted in the group."},
    "btn_inactive": {"zh": "#{n} {state},无需操作。", "en": "#{n} is {state}; nothing to do."},
    "btn_outside": {"zh": "你不在 #{n} 的责任链上。", "en": "You are not in #{n}'s chain."},
    "btn_again": {"zh": "已经记录过了。", "en": "Already recorded."},
    "btn_unknown": {"zh": "这个按钮已失效。", "en": "This button no longer works."},
    # ---- joining a group ----
    "intro": {
        "zh": "大家好,我是实地走,负责项目「{project}」。群里报告的隐患我会登记为 #N 并通知责任人;"
        "「收到」不算到场,到现场后回复照片或位置才算。/help 查看命令。",
        "en": "Hello, I am sitewalk for {project}. I register hazards reported here as #N and "
        'call the people responsible; "noted" does not count, a photo or location from the site '
        "does. /help lists the commands.",
    },
    "unconfigured": {
        "zh": "这个群还没有配置,我会保持安静。本群 chat_id:{chat}\n把下面几行加进配置文件并重启:\n"
        '[[projects]]\nname = "{title}"\nchat_id = {chat}',
        "en": "This group is not configured, so I stay silent here. Its chat_id: {chat}\n"
        'Add this to the config file and restart:\n[[projects]]\nname = "{title}"\n'
        "chat_id = {chat}",
    },
    "cannot_see": {
        "zh": "⚠️ 我现在看不到群里的普通消息(不是管理员,且隐私模式开启)。请把我设为管理员,"
        "或在 @BotFather 关闭隐私模式后重新拉我进群。",
        "en": "⚠️ I cannot see ordinary messages here (not an admin, and privacy mode is on). "
        "Make me an admin, or turn privacy mode off with @BotFather and add me again.",
    },
    "anonymous": {"zh": "匿名管理员", "en": "Anonymous admin"},
    "hours": {"zh": "{h} 小时", "en": "{h} h"},
    "more": {"zh": "等 {k} 人", "en": "and {k} more"},
    # Reloading the config file (bot/reload.py): the outcome, told to admins.
    "reload_refused": {
        "zh": "⚠️ 配置文件有误,未生效,机器人继续使用原配置:\n{problems}\n"
        "修正并保存后会自动重新加载,也可以私信我 /reload。",
        "en": "⚠️ The config file has errors and was not applied; the bot keeps the previous "
        "config:\n{problems}\nSave a fixed file and it is reloaded, or send me /reload.",
    },
    "reload_applied": {
        "zh": "✅ 配置已重新加载:{projects} 个项目。新登记的隐患使用新的责任链,进行中的隐患不变。",
        "en": "✅ Config reloaded: {projects} project(s). New hazards use the new chain; hazards "
        "already open keep theirs.",
    },
    "reload_restart": {
        "zh": "\n以下修改需重启机器人后生效:{keys}",
        "en": "\nThese changes take effect after a restart: {keys}",
    },
    "reload_not_admin": {
        "zh": "只有管理员可以重新加载配置。",
        "en": "Only admins can reload the config.",
    },
    "reload_no_file": {
        "zh": "这个机器人不是从配置文件启动的,没有可重新加载的文件。",
        "en": "This bot was not started from a config file; there is nothing to reload.",
    },
    # `sitewalk demo`'s own narration around the messages it replays.
    "demo_title": {
        "zh": "sitewalk demo: 清江浦, 2024-05-06, time runs {speed}× faster; Ctrl-C stops it.",
        "en": "sitewalk demo: Qingjiangpu, 2024-05-06, time runs {speed}× faster; Ctrl-C stops it.",
    },
    "demo_in_group": {"zh": "[群] {who}", "en": "[group] {who}"},
    "demo_bot_group": {"zh": "[机器人→群]", "en": "[bot→group]"},
    "demo_bot_dm": {"zh": "[机器人→私信 {who}]", "en": "[bot→DM {who}]"},
    "demo_reaction": {"zh": "{emoji} (表情回应,不发文字)", "en": "{emoji} (a reaction, no text)"},
    "demo_acked_head": {
        "zh": "只回复了「收到」、没有到场的人:",
        "en": 'Typed "noted" and never went to the site:',
    },
    "demo_acked": {"zh": "{who} {at}「{text}」", "en": '{who} {at} "{text}"'},
    "demo_count": {
        "zh": "机器人:群内 {group} 条(含表情回应),升级私信 {dms} 条。",
        "en": "The bot's messages: in the group {group} (reactions included), escalation DMs {dms}.",
    },
    "demo_moral": {
        "zh": "原案中,两小时后事故发生。实地走要的不是「收到」,是有人到现场叫停施工。",
        "en": "In the real case the accident came two hours later. sitewalk does not want "
        '"noted": it wants someone on site to stop the work.',
    },
}

# The accident types of GB 6441, as the classifier names them (its lexicon and its model);
# a card in English shows them in English. A name not here (a project's own) shows as it is.
CATEGORY_NAMES: dict[str, dict[str, str]] = {
    "爆炸": {"zh": "爆炸", "en": "explosion"},
    "容器爆炸": {"zh": "容器爆炸", "en": "pressure vessel explosion"},
    "中毒和窒息": {"zh": "中毒和窒息", "en": "poisoning or suffocation"},
    "触电": {"zh": "触电", "en": "electric shock"},
    "坍塌": {"zh": "坍塌", "en": "collapse"},
    "起重伤害": {"zh": "起重伤害", "en": "lifting and cranes"},
    "高处坠落": {"zh": "高处坠落", "en": "fall from height"},
    "车辆伤害": {"zh": "车辆伤害", "en": "vehicles"},
    "机械伤害": {"zh": "机械伤害", "en": "machinery"},
    "淹溺": {"zh": "淹溺", "en": "drowning"},
    "灼烫": {"zh": "灼烫", "en": "burns and scalds"},
    "火灾": {"zh": "火灾", "en": "fire"},
    "物体打击": {"zh": "物体打击", "en": "struck by objects"},
    "其他伤害": {"zh": "其他伤害", "en": "other injury"},
}

# Telegram's limit is 4096; a margin leaves room for what the dispatcher may add.
MAX_TEXT = 4000
# How many names a list in a card or DM shows before "and N more".
MAX_NAMES = 30

_REFUSALS: dict[Refusal, dict[str, str]] = {
    Refusal.FORWARDED: {"zh": "转发的照片或位置不算", "en": "forwarded media does not count"},
    Refusal.REUSED_PHOTO: {"zh": "这张照片已被用作证据", "en": "this photo was already used"},
    Refusal.OUTSIDE_SITE: {
        "zh": "位置不在工地范围内{distance};到现场后请发实时位置",
        "en": "outside the site{distance}; share a live location from there",
    },
    Refusal.VENUE: {
        "zh": "地图选点不算,请发送实时位置",
        "en": "a place picked on a map does not count; share your live location",
    },
    Refusal.NOT_IN_CHAIN: {
        "zh": "你不在本隐患目前通知到的责任人之中;已作为补充信息记录,计时继续",
        "en": "you are not among the people called so far; kept as extra info, the clock runs on",
    },
}


@dataclass(frozen=True, slots=True)
class Texts:
    """Renders texts in one language and one timezone."""

    language: str
    timezone: str

    def _t(self, key: str, **values: object) -> str:
        return clip(_T[key][self.language].format(**values))

    def clock(self, when: datetime) -> str:
        # Not strftime: a catch-up renders 200,000 of these, and this is a third of the cost.
        local = when.astimezone(ZoneInfo(self.timezone))
        return f"{local.hour:02d}:{local.minute:02d}"

    def due(self, when: datetime, now: datetime | None) -> str:
        """A deadline as people read it: 10:30 today, 明天 08:30, else the date too.

        Working hours can move a deadline to the next working morning, or past a holiday, and a
        bare 08:30 would then read as this morning.
        """
        if now is None:
            return self.clock(when)
        zone = ZoneInfo(self.timezone)
        days = (when.astimezone(zone).date() - now.astimezone(zone).date()).days
        if days == 0:
            return self.clock(when)
        if days == 1:
            return self._t("tomorrow", t=self.clock(when))
        return self.stamp(when)

    def stamp(self, when: datetime) -> str:
        return when.astimezone(ZoneInfo(self.timezone)).strftime("%m-%d %H:%M")

    def people(self, labels: Sequence[str]) -> str:
        """A list of names, cut at MAX_NAMES so that a long list cannot outgrow the message."""
        if not labels:
            return _T["nobody"][self.language]
        shown = list(labels[:MAX_NAMES])
        if len(labels) > MAX_NAMES:
            shown.append(self._t("more", k=len(labels) - MAX_NAMES))
        return ("、" if self.language == "zh" else ", ").join(shown)

    def called(self, role: str, labels: Sequence[str]) -> str:
        """A level's role and its people; the role once where every name shown already carries
        it, as group nicknames often do (监理 监理张工 reads as a stutter)."""
        people = self.people(labels)
        # A loop, not all(...): a catch-up renders one of these for every group notice.
        for label in labels[:MAX_NAMES]:
            if not label.startswith(role):
                return f"{role} {people}"
        return people if labels else f"{role} {people}"

    def left(self, delta: timedelta) -> str:
        """Time left, in whole minutes rounded up: 59 s left is "1 分钟", not yet overdue, and
        27 min 59 s reads as 28, as a countdown does."""
        seconds = delta.total_seconds()
        if seconds <= 0:
            return self._t("overdue_now")
        return self._t("left", m=-int(-seconds // 60))

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
        now: datetime | None = None,
    ) -> str:
        if category:
            category = CATEGORY_NAMES.get(category, {}).get(self.language, category)
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
            called=self.called(role, people),
            deadline=self.due(deadline, now),
        )

    def ack_reminder(self, *, number: int, left: timedelta) -> str:
        return self._t("ack_reminder", n=number, left=self.left(left))

    def on_site(self, *, number: int, who: str, how: str) -> str:
        return self._t("on_site", n=number, who=who, how=how)

    def refused(self, reason: Refusal, distance_m: float | None = None) -> str:
        distance = "" if distance_m is None else self._t("refused_distance", d=round(distance_m))
        text = _REFUSALS[reason][self.language].format(distance=distance)
        return self._t("refused", reason=text)

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
        self,
        *,
        number: int,
        project: str,
        role: str,
        text: str,
        deadline: datetime,
        now: datetime | None = None,
    ) -> str:
        return self._t(
            "dm_critical",
            n=number,
            project=project,
            role=role,
            text=_quote(text),
            deadline=self.due(deadline, now),
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
        before, after = self.group_escalated_around_number(
            level=level, role=role, people=people, unreachable=unreachable, start_link=start_link
        )
        return clip(f"{before}{number}{after}")

    def group_escalated_around_number(
        self,
        *,
        level: int,
        role: str,
        people: Sequence[str],
        unreachable: Sequence[str],
        start_link: str,
    ) -> tuple[str, str]:
        """`group_escalated` as the text before the hazard's number and the text after it.

        Everything but the number is the same for every hazard of a chain level, and a catch-up
        tells a level about hundreds of hazards: the sweep renders this once a level and tick.
        """
        extra = (
            self._t("unreachable", people=self.people(unreachable), link=start_link)
            if unreachable
            else ""
        )
        before, after = _T["group_escalated"][self.language].split("{n}")
        values = {"level": level, "called": self.called(role, people), "unreachable": extra}
        return before.format(**values), after.format(**values)

    def group_repeat(self, *, number: int, role: str, k: int, of: int) -> str:
        return self._t("group_repeat", n=number, role=role, k=k, of=of)

    def started(self, *, name: str) -> str:
        return self._t("started", name=name)

    # ---- evidence ------------------------------------------------------------------------

    def how(self, kind: str, *, live: bool = False, by_dm: bool = False) -> str:
        """How a visit was shown: 照片, 位置, 实时位置, optionally "sent by DM"."""
        key = "how_photo" if kind == "photo" else ("how_live" if live else "how_location")
        how = self._t(key)
        return self._t("how_dm", how=how) if by_dm else how

    def ask_which(self, kind: str) -> str:
        return self._t("ask_which", what=self.how(kind))

    def ask_keyboard(self, options: Sequence[tuple[int, str]]) -> Keyboard:
        """One button per candidate hazard: "#N 「report」"."""
        rows = [
            [_button(f"#{n} {_quote(text, 24)}", f"ev:{n}")] for n, text in options[:MAX_BUTTONS]
        ]
        return {"inline_keyboard": rows}

    def ask_chosen(self, *, number: int) -> str:
        return self._t("ask_chosen", n=number)

    def ask_not_yours(self) -> str:
        return self._t("ask_not_yours")

    def ask_done(self) -> str:
        return self._t("ask_done")

    def no_such_hazard(self, *, number: int) -> str:
        return self._t("no_such_hazard", n=number)

    def dm_evidence_hint(self) -> str:
        return self._t("dm_evidence_hint")

    def dm_on_site(self, *, number: int) -> str:
        return self._t("dm_on_site", n=number)

    # ---- commands ------------------------------------------------------------------------

    def state(self, state: str) -> str:
        return self._t(f"state_{state}")

    def duration(self, delta: timedelta) -> str:
        minutes = int(delta.total_seconds() // 60)
        if minutes >= 60 and minutes % 60 == 0:
            return self._t("hours", h=minutes // 60)
        return self._t("left", m=minutes)

    def hazards_head(self, *, count: int) -> str:
        return self._t("hazards_head", k=count) if count else self._t("hazards_none")

    def hazard_line(
        self,
        *,
        number: int,
        state: str,
        level: int,
        role: str,
        left: timedelta | None,
        text: str,
    ) -> str:
        if left is None:
            when = "-"
        elif state == "on_site":
            when = self._t("left_rectify", left=self.left(left))
        else:
            when = self.left(left)
        return self._t(
            "hazard_line",
            n=number,
            state=self.state(state),
            level=level,
            role=role,
            left=when,
            text=_quote(text, 40),
        )

    def timeline_head(self, *, number: int, state: str, level: int, text: str) -> str:
        return self._t(
            "timeline_head", n=number, state=self.state(state), level=level, text=_quote(text)
        )

    def timeline_acked(self, acked: Sequence[str]) -> str:
        return self._t("timeline_acked", people=self.people(acked))

    def event_line(
        self, *, at: datetime, kind: str, actor: str | None, detail: dict[str, Any]
    ) -> str:
        """One line of a hazard's timeline: time, who, what happened."""
        words = _EVENTS.get(kind, {}).get(self.language, kind)
        values = {k: _short(v) for k, v in detail.items()}
        values.setdefault("reason", "")
        if kind == "evidence_refused" and detail.get("reason") in _REFUSAL_VALUES:
            distance = detail.get("distance_m")
            reason = _REFUSALS[Refusal(detail["reason"])][self.language]
            values["reason"] = reason.format(
                distance=self._t("refused_distance", d=distance) if distance is not None else ""
            )
        try:
            what = words.format_map(_Missing(values))
        except (ValueError, IndexError):  # a stored detail that does not fit the wording
            what = kind
        who = f"{actor} " if actor else ""
        return clip(f"{self.clock(at)} {who}{what}", 300)

    def usage_hazard(self) -> str:
        return self._t("usage_hazard")

    def chain_head(self, *, project: str) -> str:
        return self._t("chain_head", project=project)

    def chain_level(
        self, *, k: int, role: str, deadline: timedelta, people: Sequence[tuple[str, bool]]
    ) -> str:
        marked = [self._t("chain_ok" if ok else "chain_no", who=who) for who, ok in people]
        return self._t(
            "chain_level",
            k=k,
            role=role,
            deadline=self.duration(deadline),
            people=self.people(marked),
        )

    def chain_legend(self) -> str:
        return self._t("chain_legend")

    def chain_start(self, *, link: str) -> str:
        return self._t("chain_start", link=link)

    def dismissed(self, *, number: int, who: str, reason: str) -> str:
        return self._t("dismissed", n=number, who=who, reason=_quote(reason, 200))

    def usage_dismiss(self) -> str:
        return self._t("usage_dismiss")

    def usage_report(self) -> str:
        return self._t("usage_report")

    def dismiss_denied(self, *, number: int) -> str:
        return self._t("dismiss_denied", n=number)

    def dismiss_state(self, *, number: int, state: str) -> str:
        return self._t("dismiss_state", n=number, state=self.state(state))

    def ids(self, *, chat: int, user: int, title: str) -> str:
        return self._t("ids", chat=chat, user=user, title=_toml(title))

    def help(self, *, private: bool) -> str:
        return self._t("help_dm" if private else "help_group")

    def start_bound(self, *, name: str, project: str, roles: Sequence[str]) -> str:
        return self._t("start_bound", name=name, project=project, roles=self.people(roles))

    def start_outside(self, *, name: str, project: str, user: int) -> str:
        return self._t("start_outside", name=name, project=project, user=user)

    def start_bad_link(self, *, name: str) -> str:
        return self._t("start_bad_link", name=name)

    def role_at(self, *, role: str, k: int) -> str:
        return self._t("role_at", role=role, k=k)

    def mine_head(self, *, count: int) -> str:
        return self._t("mine_head", k=count) if count else self._t("mine_none")

    def mine_line(
        self, *, number: int, project: str, level: int, left: timedelta | None, text: str
    ) -> str:
        when = self.left(left) if left is not None else "-"
        return self._t(
            "mine_line", n=number, project=project, level=level, left=when, text=_quote(text, 40)
        )

    def page_footer(self, *, k: int, of: int) -> str:
        return self._t("page", k=k, of=of)

    def page_gone(self) -> str:
        return self._t("page_gone")

    def page_keyboard(self, *, prefix: str, page: int, pages: int) -> Keyboard | None:
        """‹ and › buttons whose data is `prefix:page`; None when one page is all there is."""
        if pages <= 1:
            return None
        row = []
        if page > 1:
            row.append(_button(self._t("page_prev"), f"{prefix}:{page - 1}"))
        if page < pages:
            row.append(_button(self._t("page_next"), f"{prefix}:{page + 1}"))
        return {"inline_keyboard": [row]}

    # ---- escalation DM buttons -----------------------------------------------------------

    def reload(self, part: str, **values: object) -> str:
        """What a reload of the config file did, or why it was not done (the `reload_*` texts)."""
        return self._t(f"reload_{part}", **values)

    def demo(self, part: str, **values: object) -> str:
        """A line of `sitewalk demo`'s narration (the `demo_*` texts)."""
        return self._t(f"demo_{part}", **values)

    def going(self, *, number: int, who: str) -> str:
        return self._t("going", n=number, who=who)

    def going_ok(self) -> str:
        return self._t("going_ok")

    def delegated_ok(self) -> str:
        return self._t("delegated_ok")

    def stop_order(self, *, number: int, who: str, role: str, text: str) -> str:
        return self._t("stop_order", n=number, who=who, role=role, text=_quote(text))

    def stop_ok(self) -> str:
        return self._t("stop_ok")

    def button_inactive(self, *, number: int, state: str) -> str:
        return self._t("btn_inactive", n=number, state=self.state(state))

    def button_outside(self, *, number: int) -> str:
        return self._t("btn_outside", n=number)

    def button_again(self) -> str:
        return self._t("btn_again")

    def button_unknown(self) -> str:
        return self._t("btn_unknown")

    # ---- joining a group -----------------------------------------------------------------

    def intro(self, *, project: str) -> str:
        return self._t("intro", project=project)

    def unconfigured(self, *, chat: int, title: str) -> str:
        return self._t("unconfigured", chat=chat, title=_toml(title))

    def cannot_see(self) -> str:
        return self._t("cannot_see")

    def anonymous(self) -> str:
        return self._t("anonymous")


Keyboard = dict[str, list[list[dict[str, str]]]]
# Telegram allows 100 buttons; a question with more choices than this would not be read anyway.
MAX_BUTTONS = 10

# Descriptions for setMyCommands, per scope and language.
COMMANDS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "group": {
        "zh": [
            ("hazards", "进行中的隐患"),
            ("hazard", "某个隐患的全部记录:/hazard N"),
            ("chain", "责任链,以及谁能收到私信"),
            ("report", "登记我没认出的隐患:/report 内容"),
            ("dismiss", "撤销误报:/dismiss N 原因"),
            ("id", "本群和你的 id(用于配置文件)"),
            ("help", "怎么用"),
        ],
        "en": [
            ("hazards", "Active hazards"),
            ("hazard", "One hazard's full record: /hazard N"),
            ("chain", "The responsibility chain and who can be DMed"),
            ("report", "Register a hazard I missed: /report what"),
            ("dismiss", "A false alarm: /dismiss N reason"),
            ("id", "This chat's and your ids, for the config file"),
            ("help", "How it works"),
        ],
    },
    "private": {
        "zh": [
            ("mine", "等我处理的隐患"),
            ("start", "启用私信"),
            ("help", "怎么用"),
        ],
        "en": [
            ("mine", "Hazards waiting for me"),
            ("start", "Enable messages"),
            ("help", "How it works"),
        ],
    },
}

# Timeline wording per event kind; {names} come from the event's stored detail.
_EVENTS: dict[str, dict[str, str]] = {
    "reported": {"zh": "报告隐患", "en": "reported it"},
    "acknowledged": {"zh": "回复「{text}」(未到场)", "en": 'typed "{text}" (not a visit)'},
    "on_site": {"zh": "到场确认({media})", "en": "on site ({media})"},
    "evidence_refused": {"zh": "证据未计入:{reason}", "en": "evidence not counted: {reason}"},
    "evidence_extra": {"zh": "补充证据({media})", "en": "extra evidence ({media})"},
    "escalated": {"zh": "升级到第{level}级", "en": "escalated to level {level}"},
    "reminded": {
        "zh": "再次提醒第{level}级({repeat}/{of})",
        "en": "reminded level {level} ({repeat}/{of})",
    },
    "dm_failed": {"zh": "私信失败:{reason}", "en": "DM failed: {reason}"},
    "delivery_failed": {"zh": "消息发送失败:{reason}", "en": "delivery failed: {reason}"},
    "unresolved_member": {
        "zh": "@{username} 尚未和机器人说过话,无法私信",
        "en": "@{username} is not known yet; no DM",
    },
    "dismissed": {"zh": "撤销(误报):{reason}", "en": "dismissed as a false alarm: {reason}"},
    "going": {"zh": "表示正在前往现场", "en": "said they are going to the site"},
    "delegated": {
        "zh": "表示已安排人员(计时继续)",
        "en": "said someone is sent (the clock keeps running)",
    },
    "stop_work": {"zh": "下达停工令", "en": "ordered the work stopped"},
    "engine_error": {"zh": "内部错误,已推迟处理", "en": "internal error; postponed"},
    "chat_migrated": {"zh": "群升级为超级群", "en": "the group became a supergroup"},
}
_REFUSAL_VALUES = frozenset(r.value for r in Refusal)


class _Missing(dict[str, object]):
    """format_map values where a field an older event lacks renders as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


def _short(value: object) -> object:
    return _quote(value, 60) if isinstance(value, str) else value


def escalation_keyboard(language: str, hazard_id: int) -> Keyboard:
    """我去现场 / 已安排人员 / 叫停施工 for one hazard; needs only the language (see dm_payload)."""
    if language not in LANGUAGES:
        language = LANGUAGES[0]
    going, delegated, stop = _T["btn_going"], _T["btn_delegated"], _T["btn_stop"]
    return {
        "inline_keyboard": [
            [
                _button(going[language], f"go:{hazard_id}"),
                _button(delegated[language], f"sent:{hazard_id}"),
            ],
            [_button(stop[language], f"stop:{hazard_id}")],
        ]
    }


def _button(text: str, data: str) -> dict[str, str]:
    return {"text": text, "callback_data": data}


def _toml(text: str) -> str:
    """A title safe inside a TOML basic string."""
    return text.replace("\\", "").replace('"', "'")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Keep a text within Telegram's size limits; what is cut is marked with …."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str, limit: int = 300) -> str:
    """Quote a report, shortened so that a card or DM stays far below Telegram's 4096."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""The message classifier: the lexicon's rules by behaviour, the model-first classifier the bot
uses, accuracy on the labelled sets (and the blind parts 7-8), lexicon extension."""

from __future__ import annotations

import ast
import json
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from bot.config import parse_config
from escalation import ngram, train
from escalation.classifier import (
    MODEL_MAX_CHARS,
    Classification,
    Classifier,
    Kind,
    LexiconExtension,
    RuleClassifier,
    Severity,
    classify_lines,
)
from escalation.lexicon import normalise as lx_normalise
from tests.conftest import CONFIG_TOML

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def clf() -> RuleClassifier:
    """The lexicon's rules alone: the behaviour tests below are theirs. They decide whatever the
    model is unsure of, questions, long texts and project words, and explain every hazard."""
    return RuleClassifier()


@pytest.fixture(scope="module")
def bot_clf() -> Classifier:
    """What the bot uses: the n-gram model first, the rules where it is unsure."""
    return Classifier()


def kind_of(clf: Classifier | RuleClassifier, text: str, *, is_reply: bool = False) -> Kind:
    return clf.classify(text, is_reply=is_reply).kind


# --- hazards -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("塔吊配重块松动", "起重伤害"),
        ("临边防护栏杆被拆了没恢复", "高处坠落"),
        ("电缆破皮泡在积水里", "触电"),
        ("有限空间作业没做气体检测就下人了", "中毒和窒息"),
        ("Worker on the roof without a harness", "高处坠落"),
    ],
)
def test_reports_without_any_hazard_word_are_hazards(
    clf: RuleClassifier, text: str, category: str
) -> None:
    """The issue's examples, none of which says 隐患/危险/风险, are hazards in their category."""
    result = clf.classify(text)
    assert result.kind is Kind.HAZARD
    assert result.category == category
    assert result.severity is Severity.NORMAL


@pytest.mark.parametrize(
    "text",
    [
        "有人在屋面干活安全代没挂",
        "脚手价上的跳板没绑",
        "塔调配重块松了",
        "基抗边上裂了",
        "架子上有人没带安全帽",
    ],
)
def test_site_slang_and_phone_typos_are_understood(clf: RuleClassifier, text: str) -> None:
    """安全代, 脚手价, 塔调, 基抗 and 架子 are read as 安全带, 脚手架, 塔吊, 基坑 and scaffold."""
    assert kind_of(clf, text) is Kind.HAZARD


def test_a_state_pairs_with_an_object_only_nearby(clf: RuleClassifier) -> None:
    """松动 next to 配重块 is a report; the same words far apart in a long message are not."""
    assert kind_of(clf, "配重块松动") is Kind.HAZARD
    far = "配重块的图纸和验收资料我都放在办公室第二个柜子里了，松动的那个抽屉别拉"
    assert kind_of(clf, far) is Kind.OTHER


def test_a_state_describes_its_nearest_object(clf: RuleClassifier) -> None:
    """In "架子上的密目网被风撕开了" the net is torn, so the category is a fall, not a collapse."""
    result = clf.classify("架子上的密目网被风撕开了")
    assert result.category == "高处坠落"
    assert "object:密目网" in result.matched


def test_a_fuel_beside_an_ignition_source_is_a_hazard(clf: RuleClassifier) -> None:
    """Oxygen cylinders next to a welder pair as fuel and ignition: an explosion risk."""
    result = clf.classify("氧气瓶就放在电焊机旁边")
    assert (result.kind, result.category) == (Kind.HAZARD, "爆炸")
    assert "ignition:电焊机" in result.matched


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("3号楼基坑东侧路面陷下去一截", "坍塌"),
        ("the bank on the east side is undercut and starting to slump", "坍塌"),
        ("formwork props are bowing under the slab pour", "坍塌"),
        ("有辆渣土车在场内逆行", "车辆伤害"),
        ("dump truck going the wrong way round the one-way haul road", "车辆伤害"),
        ("吊篮钢丝绳有一处断股了", "高处坠落"),
        ("二级箱门坏了，里面线头都露在外面", "触电"),
        ("乙炔瓶减压阀那里漏气，嘶嘶响", "爆炸"),
        ("8楼在动火，没审批也没看火的人", "火灾"),
    ],
)
def test_failure_states_and_unsafe_acts_are_read_by_family(
    clf: RuleClassifier, text: str, category: str
) -> None:
    """Deformation verbs (陷, slump, bow), unsafe acts (逆行, wrong way) and absent watchers report."""
    result = clf.classify(text)
    assert (result.kind, result.category) == (Kind.HAZARD, category), result.matched


def test_an_unfit_operator_is_a_hazard_of_the_machine_he_runs(clf: RuleClassifier) -> None:
    """An operator (塔吊司机) with an unfit state (喝了酒) reports a hazard, in the crane's category."""
    result = clf.classify("塔吊司机昨晚喝了酒，今天一早又上去开了")
    assert (result.kind, result.category) == (Kind.HAZARD, "起重伤害")
    assert {"object:塔吊司机", "unfit:喝了酒"} <= set(result.matched)
    assert kind_of(clf, "严禁酒后作业") is Kind.OTHER


def test_a_load_on_the_hook_is_a_danger_zone(clf: RuleClassifier) -> None:
    """吊装的预制楼梯 names the load (a pattern object); a crowd under it is a critical report."""
    result = clf.classify("吊装的预制楼梯在空中转圈，下面一群人在看热闹")
    assert (result.kind, result.severity) == (Kind.HAZARD, Severity.CRITICAL)
    assert "object:吊装的预制楼梯" in result.matched
    assert kind_of(clf, "steel tubes being lifted over the canteen while people are eating") is (
        Kind.HAZARD
    )


def test_a_failure_may_describe_the_topic_of_the_clause_before(clf: RuleClassifier) -> None:
    """In "砖墙砌了三米多高，上面也没压顶，风一大就晃" the wall sways, though 晃 is far from it."""
    result = clf.classify("那段砖墙砌了三米多高，上面也没压顶，风一大就晃")
    assert result.kind is Kind.HAZARD
    assert "object:砖墙" in result.matched
    # A failure that modifies what follows it ("松动的那个抽屉") does not look back.
    far = "配重块的图纸和验收资料我都放在办公室第二个柜子里了，松动的那个抽屉别拉"
    assert kind_of(clf, far) is Kind.OTHER


@pytest.mark.parametrize(
    "text",
    [
        "地下室的排水泵又堵了，找人掏一下",
        "钢筋加工棚的灯坏了两个，电工有空换一下",
        "concrete trucks stuck in traffic, half hour late",
        "沉降观测明天上午做",
        "昨天那个边坡裂缝复测了，没有发展",
        "that crack is in the screed, not the slab",
    ],
)
def test_broken_amenities_monitoring_and_cosmetic_defects_are_not_reports(
    clf: RuleClassifier, text: str
) -> None:
    """A blocked pump, a dead lamp, traffic, monitoring and a screed crack report no danger."""
    assert kind_of(clf, text) is Kind.OTHER


@pytest.mark.parametrize(
    "text",
    [
        "西侧围挡被风刮得快倒了，随时会砸到人行道",
        "地下室有人晕倒了，快来人",
        "有人在下面！塔吊吊的那捆钢管没捆牢",
        "Scaffold is about to collapse!! people underneath",
    ],
)
def test_imminence_makes_a_report_critical(clf: RuleClassifier, text: str) -> None:
    """随时, 快倒了, 有人晕倒, 有人在下面 and their English kin make the hazard critical."""
    result = clf.classify(text)
    assert (result.kind, result.severity) == (Kind.HAZARD, Severity.CRITICAL)
    assert any(reason.startswith("imminence:") for reason in result.matched)


def test_urgency_alone_is_not_a_report(clf: RuleClassifier) -> None:
    """随时 and 有人在下面 only raise the severity of a report; on their own they report nothing."""
    assert kind_of(clf, "有事随时联系我") is Kind.OTHER
    assert kind_of(clf, "今天有人在下面收钢管，注意配合") is Kind.OTHER


# --- not reports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "今日巡查未发现隐患",
        "临边防护已整改完毕，请复查",
        "3号楼配重块已经固定了",
        "误报，那个不是配电箱",
    ],
)
def test_denied_or_resolved_hazards_are_not_reports(clf: RuleClassifier, text: str) -> None:
    """未发现隐患, 已整改完毕, 已经固定了: the message closes a hazard instead of opening one."""
    assert kind_of(clf, text) is Kind.OTHER


@pytest.mark.parametrize(
    "text",
    [
        "下午三点安全例会，各班组长参加",
        "隐患排查表周五前交",
        "天气热，注意防暑降温",
        "天冷了，宿舍严禁使用电炉",
    ],
)
def test_safety_notices_are_not_reports(clf: RuleClassifier, text: str) -> None:
    """A meeting, a form to hand in or a reminder talks about safety but reports nothing."""
    assert kind_of(clf, text) is Kind.OTHER


@pytest.mark.parametrize(
    "text",
    [
        "本周发现12处隐患，已整改11处",
        "本月安全检查共发现隐患23条，整改率96%",
        "This week: 9 hazards found",
    ],
)
def test_statistics_are_not_reports(clf: RuleClassifier, text: str) -> None:
    """Counts and rates of hazards are a summary, not a new report."""
    assert kind_of(clf, text) is Kind.OTHER


@pytest.mark.parametrize(
    "text", ["哪个配重块？", "边坡裂缝有多宽？", "塔吊那个处理了没有", "Which crane?"]
)
def test_questions_about_a_hazard_are_not_reports(clf: RuleClassifier, text: str) -> None:
    """A question about a hazard asks for detail; it neither reports nor acknowledges."""
    assert kind_of(clf, text, is_reply=True) is Kind.OTHER


def test_english_terms_match_whole_words_only(clf: RuleClassifier) -> None:
    """The word "no" inside "know", or "cover" inside "recovered", is not a term."""
    assert kind_of(clf, "I know the guardrail supplier, he recovered the invoice") is Kind.OTHER


def test_full_width_text_is_folded_before_matching(clf: RuleClassifier) -> None:
    """Full-width Latin letters, as some phone keyboards type them, read as ASCII."""
    assert kind_of(clf, "Ｗｏｒｋｅｒ ｗｉｔｈｏｕｔ ａ ｈａｒｎｅｓｓ") is Kind.HAZARD


# --- acknowledgements --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "收到",
        "收到！！！",
        "收到收到收到",
        "收到👍🏻",
        "👍",
        "好的领导",
        "@张工 收到",
        "王工收到",
        "收悉",
    ],
)
def test_received_with_punctuation_emoji_names_and_repetition_is_an_ack(
    clf: RuleClassifier, text: str
) -> None:
    """收到 and its variants stay an ack whatever punctuation, emoji, names or repeats surround it."""
    assert kind_of(clf, text, is_reply=True) is Kind.ACK


@pytest.mark.parametrize(
    "text",
    [
        "马上处理",
        "收到，立即整改",
        "已安排人员",
        "收到，已转发给施工队",
        "请各单位高度重视",
        "收到，要严肃处理",
        "请施工单位抓紧整改",
        "收到，我已拟好书面处罚决定",
    ],
)
def test_promises_forwards_and_orders_without_action_are_acks(
    clf: RuleClassifier, text: str
) -> None:
    """A promise, a forward or an order is still only words: the bot wants a site visit."""
    assert kind_of(clf, text, is_reply=True) is Kind.ACK


@pytest.mark.parametrize("text", ["noted", "Noted, thanks", "on it", "Roger that", "will do"])
def test_english_acknowledgements_are_acks(clf: RuleClassifier, text: str) -> None:
    """noted, on it, roger and will do are the English 收到."""
    assert kind_of(clf, text, is_reply=True) is Kind.ACK


def test_ack_words_that_claim_the_work_done_are_not_an_ack(clf: RuleClassifier) -> None:
    """ "这个已经处理了" claims a fix (other); "收到，已经在处理了" only says work has begun (ack)."""
    assert kind_of(clf, "这个已经处理了，你看下照片", is_reply=True) is Kind.OTHER
    assert kind_of(clf, "收到，已经在处理了", is_reply=True) is Kind.ACK
    assert kind_of(clf, "收到，马上通知塔吊停止作业", is_reply=True) is Kind.ACK


def test_a_bare_ack_is_an_ack_outside_a_reply_too(clf: RuleClassifier) -> None:
    """收到 is an ack with or without is_reply; what it means there is the bot's decision."""
    assert kind_of(clf, "收到", is_reply=False) is Kind.ACK


@pytest.mark.parametrize(
    "text",
    [
        "收到？",
        "需要我去现场看一下吗？",
        "现场看过了，螺栓都是紧的",
        "辛苦了",
        "项目经理明天去公司汇报",
    ],
)
def test_a_question_or_a_substantive_reply_is_not_an_ack(clf: RuleClassifier, text: str) -> None:
    """Only a message made entirely of acknowledgement words is an ack."""
    assert kind_of(clf, text, is_reply=True) is Kind.OTHER


@pytest.mark.parametrize(
    "text",
    [
        "收到，另外电梯井口也是敞开的",
        "好的，马上处理。顺便说下2号楼临边也没防护",
        "got it. also the stair opening on L4 is uncovered",
    ],
)
def test_an_ack_that_reports_a_new_hazard_is_a_hazard(clf: RuleClassifier, text: str) -> None:
    """收到 followed by a new hazard is a report, and the matched list says why."""
    result = clf.classify(text, is_reply=True)
    assert result.kind is Kind.HAZARD
    assert "rule:ack_with_new_hazard" in result.matched


# --- round 3 ------------------------------------------------------------------------------------


def test_a_report_that_ends_by_asking_who_did_it_still_reports(clf: RuleClassifier) -> None:
    """ "…盖板没了，谁拿走的?" asks about a person; a question about the hazard itself does not report."""
    result = clf.classify("五楼洞口的盖板没了，谁拿走的？")
    assert (result.kind, result.category) == (Kind.HAZARD, "高处坠落"), result.matched
    assert kind_of(clf, "the riser cover is missing, who took it?") is Kind.HAZARD
    assert kind_of(clf, "五楼洞口的盖板是不是没了？") is Kind.OTHER
    assert kind_of(clf, "谁拆了五楼洞口的盖板？") is Kind.OTHER


@pytest.mark.parametrize("text", ["1", "111", "收到[抱拳]", "[强][强]", "好的[OK]"])
def test_a_bare_one_and_wechat_ack_stickers_are_acks(clf: RuleClassifier, text: str) -> None:
    """Groups answer 1 for 收到, and WeChat's [抱拳] and [强] arrive as text codes."""
    result = clf.classify(text, is_reply=True)
    assert result.kind is Kind.ACK, result.matched
    assert result.matched[0].startswith("ack:")


def test_a_sticker_that_is_not_an_ack_is_nothing(clf: RuleClassifier) -> None:
    """[微笑] or [捂脸] alone acknowledge nothing; 12 is a number, not 1."""
    assert kind_of(clf, "[捂脸]") is Kind.OTHER
    assert kind_of(clf, "12") is Kind.OTHER


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("邻边的防护拦杆被拆了好几米", "高处坠落"),
        ("电相门是开的，里面的线乱七八遭", "触电"),
        ("六楼动口没盖", "高处坠落"),
        ("吊勾的防脱钩保险没了", "起重伤害"),
    ],
)
def test_phone_typos_by_homophone_take_their_words_roles(
    clf: RuleClassifier, text: str, category: str
) -> None:
    """邻边, 拦杆, 电相, 动口, 吊勾: pinyin input picks the wrong character; the role stays."""
    result = clf.classify(text)
    assert (result.kind, result.category) == (Kind.HAZARD, category), result.matched


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("检修配电柜没挂牌上锁，另一个班组差点合闸", "触电"),
        ("盾构始发井里没通风，下去的人说闷得慌", "中毒和窒息"),
        ("隧道掌子面一直在掉块，还有人在下面打锚杆", "坍塌"),
        ("冷库那边氨气泄漏了，味道很冲", "中毒和窒息"),
        ("老楼外墙皮一块块往下掉，下面就是单元门口", "物体打击"),
        ("the telehandler is being used as a crane with a chain round the forks", "起重伤害"),
        ("sparky working on the DB without it being locked off", "触电"),
        ("gas bottles stored inside the welfare cabin", "爆炸"),
    ],
)
def test_maintenance_infrastructure_and_renovation_families(
    clf: RuleClassifier, text: str, category: str
) -> None:
    """检修 is what people do when they get hurt, not a notice; tunnels, ammonia, old façades."""
    result = clf.classify(text)
    assert (result.kind, result.category) == (Kind.HAZARD, category), result.matched
    assert kind_of(clf, "明天上午停电检修，八点到十点") is Kind.OTHER


@pytest.mark.parametrize(
    "text",
    [
        "警示教育：某项目脚手架坍塌造成2人受伤，大家引以为戒",
        "隔壁工地塔吊倒了，上新闻了，大家注意",
        "那根漏电的振动棒已经送修了",
        "电工说那个箱子已经不用了",
        "钢筋到了，在大门口，叫几个人去卸一下",
        "the hazard board in the canteen has been updated",
    ],
)
def test_stories_disposals_and_everyday_phrases_are_not_reports(
    clf: RuleClassifier, text: str
) -> None:
    """A case study, a repair already sent off, 叫几个人 or a hazard board report nothing here."""
    assert kind_of(clf, text) is Kind.OTHER


def test_a_time_word_makes_a_fix_a_promise_unless_it_dates_a_claim(clf: RuleClassifier) -> None:
    """下午整改好 promises; 上午已经处理了 says it is done, so it is not an ack."""
    assert kind_of(clf, "好的 下午整改好", is_reply=True) is Kind.ACK
    assert kind_of(clf, "这个我上午已经处理了，拍了照", is_reply=True) is Kind.OTHER
    assert kind_of(clf, "已经处理好了，之前群里发过", is_reply=True) is Kind.OTHER


# --- explanations and the JSON contract ---------------------------------------------------------


def test_every_verdict_is_explained_by_its_matched_list(clf: RuleClassifier) -> None:
    """Each hazard names its evidence and category, each ack its words, each other a reason."""
    for row in load(DATA / "messages_dev.jsonl"):
        result = clf.classify(row.text)
        assert result.matched, row.text
        if result.kind is Kind.HAZARD:
            assert result.matched[-1] == f"category:{result.category}"
            evidence = ("object:", "act:", "hazard_word:", "imminence:")
            assert any(r.startswith(evidence) for r in result.matched), row.text
        elif result.kind is Kind.ACK:
            assert result.matched[0].startswith("ack:"), row.text


def test_to_json_has_exactly_the_contract_keys(clf: RuleClassifier) -> None:
    """to_json gives text, kind, category, severity and matched, as strings and a list."""
    data = clf.classify("塔吊配重块松动").to_json()
    assert data == {
        "text": "塔吊配重块松动",
        "kind": "hazard",
        "category": "起重伤害",
        "severity": "normal",
        "matched": ["object:配重块", "failure:松动", "category:起重伤害"],
    }
    assert clf.classify("收到").to_json()["category"] is None


def test_classify_lines_skips_blanks_strips_newlines_and_keeps_chinese(clf: RuleClassifier) -> None:
    """One JSON line per non-blank input line, the trailing newline gone, Chinese unescaped."""
    out = list(classify_lines(["塔吊配重块松动\n", "\n", "   \n", "收到\r\n", "lunch?"], clf))
    assert [json.loads(line)["text"] for line in out] == ["塔吊配重块松动", "收到", "lunch?"]
    assert "塔吊" in out[0]


def test_classification_is_a_frozen_value(clf: RuleClassifier) -> None:
    """A verdict cannot be changed after the fact, and equal inputs give equal verdicts."""
    result = clf.classify("收到")
    with pytest.raises(AttributeError):
        result.kind = Kind.HAZARD  # type: ignore[misc]
    assert (
        RuleClassifier().classify("收到")
        == result
        == Classification(
            "收到", Kind.ACK, None, Severity.NORMAL, ("ack:收到", "rule:whole_message_ack")
        )
    )


# --- the classifier the bot uses: the model first, the rules where it is unsure -----------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("二楼楼梯口那块板子踩上去软软的", Kind.HAZARD),  # no lexicon word for "soft"
        ("收到收到", Kind.ACK),
        ("noted with thanks", Kind.ACK),
        ("今天中午食堂吃啥", Kind.OTHER),
        ("已整改完毕，请复查", Kind.OTHER),
    ],
)
def test_the_bot_reads_a_message_with_the_model_first(
    bot_clf: Classifier, text: str, kind: Kind
) -> None:
    """A sure model decides, and says so first in matched: its verdict, its probability, and the
    n-grams that weighed most."""
    result = bot_clf.classify(text)
    assert result.kind is kind, result.matched
    label, probability = result.matched[0].removeprefix("model:").split()
    assert label == kind, result.matched
    assert float(probability) >= 0.9, result.matched


def test_a_model_hazard_is_explained_by_the_lexicon_too(bot_clf: Classifier) -> None:
    """The lexicon's terms stand beside the n-grams, and the category ends the list."""
    result = bot_clf.classify("3号楼塔吊配重块松动了")
    assert result.kind is Kind.HAZARD
    assert result.matched[0].startswith("model:hazard")
    assert any(m.startswith("ngram:") for m in result.matched)
    assert {"object:配重块", "failure:松动了"} <= set(result.matched)
    assert result.matched[-1] == f"category:{result.category}" == "category:起重伤害"


def test_imminence_makes_a_model_hazard_critical(bot_clf: Classifier) -> None:
    """Where an imminence word could make a report critical, the rules judge it as before."""
    result = bot_clf.classify("塔吊配重块松动了 随时会掉下来 下面有人在干活")
    assert (result.kind, result.severity) == (Kind.HAZARD, Severity.CRITICAL), result.matched
    assert any(m.startswith("imminence:") for m in result.matched)


def test_questions_long_texts_and_unsure_verdicts_are_the_rules(bot_clf: Classifier) -> None:
    """收到? asks, a report asking who did it still reports, a page of text is read sentence by
    sentence, and where the model is below 0.9 the rules decide and matched says so."""
    rules = RuleClassifier()
    for text in ("收到？", "五楼洞口的盖板没了，谁拿走的？", "哪个配重块?"):
        assert bot_clf.classify(text) == rules.classify(text)
    assert kind_of(bot_clf, "收到？") is Kind.OTHER
    assert kind_of(bot_clf, "五楼洞口的盖板没了，谁拿走的？") is Kind.HAZARD
    page = "3号楼塔吊配重块松动了。" + "现场情况很复杂" * 40
    assert len(page) > MODEL_MAX_CHARS
    assert bot_clf.classify(page) == rules.classify(page)
    assert kind_of(bot_clf, page) is Kind.HAZARD
    unsure = bot_clf.classify("三楼那边的板子翘起来了")
    assert unsure.matched[-1] == "rule:model_unsure"
    assert unsure.kind is rules.classify("三楼那边的板子翘起来了").kind


def test_every_verdict_of_the_bot_is_explained(bot_clf: Classifier) -> None:
    """Each verdict says who decided it (the model, or the rules and why) and on what."""
    for row in load(DATA / "blind_p7.jsonl") + load(DATA / "messages_dev.jsonl")[:500]:
        result = bot_clf.classify(row.text)
        assert result.matched, row.text
        by_model = result.matched[0].startswith("model:")
        assert (
            by_model
            or result.matched[-1] == "rule:model_unsure"
            or "?" in row.text
            or ("？" in row.text)
        ), (row.text, result.matched)
        if result.kind is Kind.HAZARD:
            assert result.matched[-1].startswith("category:") or not by_model, result.matched
            assert result.category is not None


def test_a_verdicts_reasons_are_made_once_and_only_when_read() -> None:
    """`why` may be a function: it runs when `matched` is first read, once, and the verdict
    equals (and hashes as) one built with the tuple."""
    calls: list[int] = []

    def why() -> tuple[str, ...]:
        calls.append(1)
        return ("model:ack 0.99", "ngram:收到")

    lazy = Classification("收到", Kind.ACK, None, Severity.NORMAL, why)
    assert calls == []
    eager = Classification(
        "收到", Kind.ACK, None, Severity.NORMAL, ("model:ack 0.99", "ngram:收到")
    )
    assert lazy == eager
    assert hash(lazy) == hash(eager)
    assert lazy.to_json()["matched"] == ["model:ack 0.99", "ngram:收到"]
    assert lazy.matched == eager.matched
    assert calls == [1]


def test_the_shared_table_adds_up_as_the_models_do() -> None:
    """The ModelSet's packed integer sums give each model's own verdict, probability, reasons,
    category and severity, on every labelled message (see ngram._UNIT)."""
    models, joint = ngram.shipped(), ngram.shipped_set()
    for row in load(DATA / "messages_dev.jsonl") + load(DATA / "blind_p8.jsonl"):
        norm = lx_normalise(row.text)
        feats, reading = ngram.features(norm), joint.read(norm)
        alone, shared = models["kind"].predict_features(feats), joint.kind_of(reading)
        assert (alone.label, alone.reasons) == (shared.label, shared.reasons), row.text
        assert alone.probability == pytest.approx(shared.probability, abs=1e-9)
        assert models["category"].label_features(feats) == joint.category_of(reading)
        assert models["severity"].label_features(feats) == joint.severity_of(reading)


def test_a_reading_sums_each_feature_as_often_as_features_lists_it() -> None:
    """ModelSet adds 3-grams with what starts them (one lookup a position, not three): the kind
    sum, and a report's details sum, are the ones over `features`, exactly, on labelled and on
    random text, spaces, ends and English words included; and the features a report's reasons
    need are those same ones."""
    joint = ngram.shipped_set()
    rng = random.Random(7)
    alphabet = "塔吊配重块松动 收到好的ab c'9?？^$\u3000"
    texts = [row.text for row in load(DATA / "messages_dev.jsonl")]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(3000)]
    for text in texts:
        for norm in (lx_normalise(text), text):
            feats, reading = ngram.features(norm), joint.read(norm)
            rows = joint.rows(feats)
            assert reading.total == sum(row[0] for row in rows), norm
            assert reading.details() == sum(row[1] for row in rows), norm
            assert reading.feats == feats


def test_a_weight_too_large_to_pack_is_refused() -> None:
    """A model file whose weight would overflow its field fails loudly at load, not silently."""
    kind = ngram.NgramModel(("hazard", "ack", "other"), {"塔吊": (1e6, 0.0, 0.0)})
    small = ngram.NgramModel(("a", "b"), {})
    with pytest.raises(ValueError, match="out of range"):
        ngram.ModelSet(kind, small, small)


def test_a_text_too_long_for_the_packed_sums_is_refused_not_misread() -> None:
    """The packed fields hold 16,384 features; the classifier gives the model at most 200
    characters (about 800), and a longer text read directly is refused."""
    joint = ngram.shipped_set()
    assert joint.read(lx_normalise("塔吊" * (MODEL_MAX_CHARS // 2))).found > 0
    with pytest.raises(ValueError, match="too long"):
        joint.read("塔吊配重块松动" * 1200)


def test_the_shipped_model_is_what_training_gives() -> None:
    """escalation/data/ngram.json.gz is exactly what `python -m escalation.train` writes from
    TRAIN_FILES: training is deterministic, and the file is not stale."""
    rows = train.load([train.DATA / name for name in train.TRAIN_FILES])
    assert not {r["text"] for r in rows} & {
        r.text for r in labelled_sets()["blind_p78"] if len(r.text) > 17
    }
    shipped = (resources.files("escalation") / "data" / "ngram.json.gz").read_bytes()
    assert train.dump(train.fit(rows)) == shipped


# --- the lexicon ---------------------------------------------------------------------------------


def test_the_lexicon_ships_inside_the_package() -> None:
    """The lexicon is package data, read through importlib.resources, not a path on disk."""
    assert (resources.files("escalation") / "data" / "lexicon.toml").is_file()


def test_a_project_extends_the_rules_lexicon_from_its_config() -> None:
    """[lexicon] extra_hazard, extra_ack and extra_not_hazard change the rules' verdicts."""
    toml = CONFIG_TOML.replace(
        "admins = [111111111]",
        "admins = [111111111]\n"
        "[lexicon]\n"
        'extra_hazard = ["门禁失灵"]\n'
        'extra_ack = ["知悉"]\n'
        'extra_not_hazard = ["每周安全提示"]\n',
    )
    lex = parse_config(toml).lexicon
    extended = RuleClassifier(
        LexiconExtension(tuple(lex.extra_hazard), tuple(lex.extra_ack), tuple(lex.extra_not_hazard))
    )
    shipped = RuleClassifier()
    notice = "每周安全提示：塔吊配重块松动要及时报告"

    assert kind_of(shipped, "3号门禁失灵了") is Kind.OTHER
    assert kind_of(extended, "3号门禁失灵了") is Kind.HAZARD
    assert "act:门禁失灵" in extended.classify("3号门禁失灵了").matched
    assert kind_of(shipped, "知悉") is Kind.OTHER
    assert kind_of(extended, "知悉，马上处理") is Kind.ACK
    assert kind_of(shipped, notice) is Kind.HAZARD
    assert extended.classify(notice).matched == ("not_hazard:每周安全提示",)
    # The shipped lexicon is shared and must not have picked up the project's words.
    assert kind_of(RuleClassifier(), "3号门禁失灵了") is Kind.OTHER


def _extended_config_lexicon() -> LexiconExtension:
    toml = CONFIG_TOML.replace(
        "admins = [111111111]",
        "admins = [111111111]\n"
        "[lexicon]\n"
        'extra_hazard = ["门禁失灵"]\n'
        'extra_ack = ["了然"]\n'
        'extra_not_hazard = ["演练脚本"]\n',
    )
    lex = parse_config(toml).lexicon
    return LexiconExtension(
        tuple(lex.extra_hazard), tuple(lex.extra_ack), tuple(lex.extra_not_hazard)
    )


def test_a_project_extends_what_the_bot_reads_from_its_config() -> None:
    """A message with a word the project added is the rules' to decide, before the model:
    the project's own words win, with rule:project_words in matched to say so."""
    extended = Classifier(_extended_config_lexicon())
    shipped = Classifier()
    drill = "演练脚本：配电箱冒烟了"

    assert kind_of(shipped, "3号门禁失灵了") is Kind.OTHER
    assert kind_of(extended, "3号门禁失灵了") is Kind.HAZARD
    assert extended.classify("3号门禁失灵了").matched[-1] == "rule:project_words"
    assert kind_of(shipped, "了然") is Kind.OTHER
    assert kind_of(extended, "了然") is Kind.ACK
    assert kind_of(shipped, drill) is Kind.HAZARD
    assert kind_of(extended, drill) is Kind.OTHER
    assert extended.classify(drill).matched == ("not_hazard:演练脚本", "rule:project_words")
    # Nothing of the project's leaks into the shipped classifier.
    assert kind_of(Classifier(), "3号门禁失灵了") is Kind.OTHER


def test_the_core_imports_no_infrastructure() -> None:
    """escalation/classifier.py, lexicon.py and ngram.py import only the standard library and
    each other."""
    allowed = {
        "__future__",
        "json",
        "re",
        "tomllib",
        "unicodedata",
        "collections",
        "dataclasses",
        "enum",
        "functools",
        "importlib",
        "typing",
        "escalation",
        "gzip",
        "math",
        "random",
        "itertools",
        "operator",
    }
    for name in ("classifier.py", "lexicon.py", "ngram.py"):
        tree = ast.parse((Path(__file__).parent.parent / "escalation" / name).read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, (name, roots)


# --- accuracy on the labelled sets ---------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    text: str
    kind: str
    category: str | None
    severity: str | None
    lang: str
    context: str


def load(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as f:
        return [Row(**json.loads(line)) for line in f if line.strip()]


@dataclass(frozen=True)
class Scores:
    hazard_precision: float
    hazard_recall: float
    hazard_f1: float
    ack_accuracy: float  # share of true acks classified ack
    ack_precision: float

    @classmethod
    def of(cls, clf: Classifier | RuleClassifier, rows: list[Row]) -> Scores:
        tp = fp = fn = ack_hit = ack_true = ack_said = 0
        for row in rows:
            got = clf.classify(row.text, is_reply=row.context == "reply").kind
            tp += got is Kind.HAZARD and row.kind == "hazard"
            fp += got is Kind.HAZARD and row.kind != "hazard"
            fn += got is not Kind.HAZARD and row.kind == "hazard"
            ack_true += row.kind == "ack"
            ack_said += got is Kind.ACK
            ack_hit += got is Kind.ACK and row.kind == "ack"
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        return cls(
            precision,
            recall,
            2 * precision * recall / (precision + recall),
            ack_hit / ack_true,
            ack_hit / ack_said,
        )


# Line ranges of the held-out files, in the order the parts were written and committed.
HELDOUT_PARTS: dict[str, tuple[str, int, int | None]] = {
    "part 1: written before any tuning": ("messages_heldout.jsonl", 0, 185),
    "part 2: written after the first tuning rounds, seen since its first run": (
        "messages_heldout.jsonl",
        185,
        374,
    ),
    "part 3: written after the last tuning round of round 1": ("messages_heldout.jsonl", 374, 566),
    "part 4: written blind by another engineer after round 2": (
        "messages_heldout_p4.jsonl",
        0,
        None,
    ),
    "part 5: written blind after round 2, run once after round 3": (
        "messages_heldout_p5.jsonl",
        0,
        None,
    ),
    "part 6: written blind after round 2, run once after round 3": (
        "messages_heldout_p6.jsonl",
        0,
        None,
    ),
}
# Parts 1-4: tuned on in round 3. Parts 5 and 6: blind for the rules of round 3; since then the
# n-gram model learned from them, with dev and parts 1-4 (escalation/train.py TRAIN_FILES).
HELDOUT_FILES = ("messages_heldout.jsonl", "messages_heldout_p4.jsonl")
BLIND_FILES = ("messages_heldout_p5.jsonl", "messages_heldout_p6.jsonl")
# Parts 7-8 and 9-10: written blind for the model-first classifier, kept out of its training;
# each pair run once, parts 9-10 after the round-4 classifier was finished.
MODEL_BLIND_FILES = ("blind_p7.jsonl", "blind_p8.jsonl")
SECOND_BLIND_FILES = ("blind_p9.jsonl", "blind_p10.jsonl")


def labelled_sets() -> dict[str, list[Row]]:
    """The sets the floors guard: dev and parts 1-6 (learned from), part 4, parts 5-6, and
    parts 7-8 and 9-10 (blind)."""
    return {
        "messages_dev": load(DATA / "messages_dev.jsonl"),
        "heldout_all": [row for name in HELDOUT_FILES for row in load(DATA / name)],
        "heldout_p4": load(DATA / "messages_heldout_p4.jsonl"),
        "heldout_p56": [row for name in BLIND_FILES for row in load(DATA / name)],
        "blind_p78": [row for name in MODEL_BLIND_FILES for row in load(DATA / name)],
        "blind_p910": [row for name in SECOND_BLIND_FILES for row in load(DATA / name)],
    }


# The bot's classifier. Its model learned from dev and parts 1-6, so on those it scores as a
# fit (1.000 when set); the floors guard regressions. Parts 7-8 and 9-10, each written blind by
# two other engineers and committed before any run, are the estimates on unseen text: parts
# 7-8 P 0.985, R 0.962, F1 0.973, ack accuracy 0.975, ack precision 0.967; parts 9-10 P 0.957,
# R 0.957, F1 0.957, ack accuracy 0.983, ack precision 0.967 (docs/classifier.md).
FLOORS = {
    "messages_dev": Scores(0.995, 0.995, 0.995, 0.995, 0.995),
    "heldout_all": Scores(0.995, 0.995, 0.995, 0.995, 0.995),
    "heldout_p4": Scores(0.995, 0.995, 0.995, 0.995, 0.995),
    "heldout_p56": Scores(0.995, 0.995, 0.995, 0.995, 0.995),
    "blind_p78": Scores(0.98, 0.96, 0.97, 0.97, 0.96),
    "blind_p910": Scores(0.95, 0.95, 0.95, 0.98, 0.96),
}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_bots_accuracy_on_the_labelled_sets_stays_above_its_floor(
    bot_clf: Classifier, name: str
) -> None:
    """Hazard precision, recall and F1, ack accuracy and ack precision stay above their floors."""
    _assert_above(Scores.of(bot_clf, labelled_sets()[name]), FLOORS[name])


# The rules alone (round 3): they decide what the model is unsure of, so they keep floors of
# their own, just below what they reached. Round 3 tuned on dev and parts 1-4; parts 5-6 were its
# blind estimate, parts 7-8 a second one (P 0.962, R 0.838, F1 0.896, ack accuracy 0.933).
RULE_FLOORS = {
    "messages_dev": Scores(0.995, 0.995, 0.995, 0.995, 0.99),
    "heldout_all": Scores(0.99, 0.99, 0.99, 0.99, 0.99),
    "heldout_p4": Scores(0.99, 0.99, 0.99, 0.99, 0.99),
    # Parts 5 and 6, written blind by two other engineers and run once after round 3 ended
    # (P 0.918, R 0.801, F1 0.856, ack accuracy 0.877, ack precision 0.973): the honest
    # estimate, short of the targets. Not tuned on since; the floor guards regressions.
    "heldout_p56": Scores(0.91, 0.79, 0.85, 0.87, 0.96),
    "blind_p78": Scores(0.95, 0.83, 0.89, 0.93, 0.97),
    "blind_p910": Scores(0.95, 0.82, 0.88, 0.92, 0.96),
}


@pytest.mark.parametrize("name", sorted(RULE_FLOORS))
def test_the_rules_accuracy_on_the_labelled_sets_stays_above_its_floor(
    clf: RuleClassifier, name: str
) -> None:
    """The same figures for the rules alone."""
    _assert_above(Scores.of(clf, labelled_sets()[name]), RULE_FLOORS[name])


def _assert_above(scores: Scores, floor: Scores) -> None:
    for field in Scores.__dataclass_fields__:
        assert getattr(scores, field) >= getattr(floor, field), (field, scores)


def test_the_labelled_sets_look_like_real_groups() -> None:
    """Enough messages, mostly chatter, both languages, and dev and held-out never overlap."""
    sets = labelled_sets()
    dev, held, blind = sets["messages_dev"], sets["heldout_all"], sets["heldout_p56"]
    rows = dev + held + blind
    assert len(rows) >= 400
    share = {k: sum(r.kind == k for r in rows) / len(rows) for k in ("hazard", "ack", "other")}
    assert 0.2 <= share["hazard"] <= 0.35, share
    assert 0.15 <= share["ack"] <= 0.3, share
    assert 0.15 <= sum(r.lang == "en" for r in rows) / len(rows) <= 0.35
    # A bare 收到 or 好的 is typed in every group, so each set has its own; beyond those
    # (up to 8 characters) no message is in both. The count, not the texts, is reported: the
    # message must not show held-out lines to whoever is tuning.
    overlap = {r.text for r in dev if len(r.text) > 8} & {r.text for r in held}
    assert len(overlap) == 0, "dev messages also in held-out parts 1-4"
    # Parts 5 and 6 were written by people who never saw dev: the few texts both have are
    # phrases everyone types (4 of 640 when they were added: "will do 👍" and its kin).
    common = {r.text for r in dev if len(r.text) > 8} & {r.text for r in blind}
    assert len(common) <= 6, "dev shares more than everyday phrases with parts 5 and 6"
    # Parts 7 and 8 (blind for the model): 62 of their 640 texts also occur in what the model
    # learned from, every one an everyday ack or two (收到，马上处理, "Noted with thanks", at most
    # 17 characters); no hazard report is among them. docs/classifier.md gives the figures on
    # the rest as well.
    learned = {r.text for r in rows}
    model_blind = sets["blind_p78"]
    shared = [r for r in model_blind if r.text in learned]
    assert len(shared) <= 62, "parts 7-8 share more with the training sets than when written"
    assert all(len(r.text) <= 17 and r.kind != "hazard" for r in shared)
    # Parts 9 and 10 likewise: 58 of 640, 57 acks and "where exactly?", at most 20 characters.
    second = sets["blind_p910"]
    shared = [r for r in second if r.text in learned]
    assert len(shared) <= 58, "parts 9-10 share more with the training sets than when written"
    assert all(len(r.text) <= 20 and r.kind != "hazard" for r in shared)
    for row in rows + model_blind + second:
        assert (row.category is None) == (row.kind != "hazard") == (row.severity is None), row


def report() -> None:
    """Print the figures docs/classifier.md quotes: `python -m tests.test_classifier`."""
    clf = Classifier()
    sets = labelled_sets()
    del sets["heldout_p4"]
    sets["heldout_p56 (blind for the rules of round 3; learned from since)"] = sets.pop(
        "heldout_p56"
    )
    blind = sets.pop("blind_p78")
    second = sets.pop("blind_p910")
    for part, (name, start, end) in HELDOUT_PARTS.items():
        sets[f"  heldout {part}"] = load(DATA / name)[start:end]
    sets["blind_p78 (blind: parts 7 and 8, never learned from)"] = blind
    sets["  blind part 7 (housing, renovation, roads)"] = load(DATA / "blind_p7.jsonl")
    sets["  blind part 8 (bridges, tunnels, plants, English sites)"] = load(DATA / "blind_p8.jsonl")
    sets["blind_p910 (blind: parts 9 and 10, run once after round 4 was finished)"] = second
    sets["  blind part 9 (steel, prefab, pipes, rural, night and weather)"] = load(
        DATA / "blind_p9.jsonl"
    )
    sets["  blind part 10 (renovation in use, fit-out, facades, overseas)"] = load(
        DATA / "blind_p10.jsonl"
    )
    for name, rows in sets.items():
        _print_scores(name, clf, rows)
    _print_scores("blind_p78, the rules alone", RuleClassifier(), blind)
    _print_scores("blind_p910, the rules alone", RuleClassifier(), second)


def _print_scores(name: str, clf: Classifier | RuleClassifier, rows: list[Row]) -> None:
    s = Scores.of(clf, rows)
    found = [(r, clf.classify(r.text)) for r in rows if r.kind == "hazard"]
    found = [(r, c) for r, c in found if c.kind is Kind.HAZARD]
    category = sum(c.category == r.category for r, c in found) / max(len(found), 1)
    severity = sum(c.severity == r.severity for r, c in found) / max(len(found), 1)
    print(
        f"{name}: n={len(rows)} hazard P={s.hazard_precision:.3f} R={s.hazard_recall:.3f} "
        f"F1={s.hazard_f1:.3f} | ack accuracy={s.ack_accuracy:.3f} "
        f"precision={s.ack_precision:.3f} | of hazards found: category={category:.3f} "
        f"severity={severity:.3f}"
    )


if __name__ == "__main__":
    report()

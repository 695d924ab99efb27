"""check-config: one `FILE:LINE: dotted.key: message` line per problem, LINE being the key's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, parse_config
from bot.configfile import key_lines

VALID = """\
admins = [111]

[defaults]
timezone = "Asia/Shanghai"
critical_factor = 0.5

[[projects]]
name = "南苑"
chat_id = -1001
site = { lat = 33.5, lon = 119.0, radius_m = 300 }

  [[projects.chain]]
  role = "安全员"
  members = [1001]
  deadline = "30m"

  [[projects.chain]]
  role = "监理"
  members = [
    1002,
    "@jianli_zhang",
  ]
  deadline = "30m"

[[projects]]
name = "北苑"
chat_id = -1002

  [[projects.chain]]
  role = "安全员"
  members = [{ id = 2001, name = "王工" }]
  deadline = "1h"
"""


def line_with(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based number of the line holding the nth occurrence of `needle`."""
    numbers = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return numbers[nth - 1]


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, list[str]]:
    path = tmp_path / "chain.toml"
    path.write_text(text, encoding="utf-8")
    code = main(["check-config", str(path)])
    err = capsys.readouterr().err
    return code, [line.removeprefix(f"{path}:") for line in err.splitlines()]


def only(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> str:
    code, lines = check(tmp_path, capsys, text)
    assert code == 2
    assert len(lines) == 1, lines
    return lines[0]


def test_the_valid_base_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The file the other tests break is itself valid, so each failure below has one cause."""
    code, errors = check(tmp_path, capsys, VALID)
    assert (code, errors) == (0, [])


def test_unknown_key_in_a_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt key names its own line and path, suggests the right key; the gap is reported too."""
    text = VALID.replace('  deadline = "30m"\n\n[[projects]]', '  deadlin = "30m"\n\n[[projects]]')
    code, lines = check(tmp_path, capsys, text)
    assert code == 2
    header, typo = line_with(text, "[[projects.chain]]", 2), line_with(text, "deadlin =")
    assert lines == [
        f"{header}: projects.0.chain.1.deadline: required key `deadline` is missing",
        f"{typo}: projects.0.chain.1.deadlin: unknown key `deadlin`; did you mean `deadline`?",
    ]


def test_unknown_top_level_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown table is reported at its header line."""
    text = VALID.replace("[defaults]", "[defualts]")
    n = line_with(text, "[defualts]")
    assert only(tmp_path, capsys, text).startswith(f"{n}: defualts: unknown key `defualts`")


def test_unknown_key_inside_an_inline_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong key inside `site = { ... }` is located on that line."""
    text = VALID.replace("radius_m = 300", "radius = 300")
    n = line_with(text, "radius = 300")
    lines = check(tmp_path, capsys, text)[1]
    assert f"{n}: projects.0.site.radius: unknown key `radius`; did you mean `radius_m`?" in lines
    assert f"{n}: projects.0.site.radius_m: required key `radius_m` is missing" in lines


def test_wrong_type_in_a_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A string among the admin ids is a type error at that line, with the index in the key."""
    text = VALID.replace("admins = [111]", 'admins = [111, "222"]')
    assert only(tmp_path, capsys, text) == "1: admins.1: expected an integer, got string '222'"


def test_quoted_chat_id_is_a_type_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A quoted number is not silently coerced: it names the line of chat_id."""
    text = VALID.replace("chat_id = -1002", 'chat_id = "-1002"')
    n = line_with(text, 'chat_id = "-1002"')
    assert only(tmp_path, capsys, text) == (
        f"{n}: projects.1.chat_id: expected an integer, got string '-1002'"
    )


def test_bad_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A duration that is not `<number><s|m|h|d>` is reported at its key."""
    text = VALID.replace('deadline = "1h"', 'deadline = "1 hour"')
    n = line_with(text, '"1 hour"')
    assert only(tmp_path, capsys, text).startswith(
        f"{n}: projects.1.chain.0.deadline: not a duration: '1 hour'"
    )


def test_number_for_a_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bare number where a duration string belongs is refused at its line."""
    text = VALID.replace('deadline = "1h"', "deadline = 60")
    n = line_with(text, "deadline = 60")
    assert only(tmp_path, capsys, text).startswith(f"{n}: projects.1.chain.0.deadline: not a")


def test_empty_member_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`members = []` says a level needs someone, at the members line."""
    text = VALID.replace("members = [1001]", "members = []")
    n = line_with(text, "members = []")
    assert only(tmp_path, capsys, text) == (
        f"{n}: projects.0.chain.0.members: a level needs at least one member"
    )


def test_bad_member_in_a_multiline_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A member that is neither an id nor @username is located on its own line of the list."""
    text = VALID.replace('"@jianli_zhang",', '"jianli_zhang",')
    n = line_with(text, '"jianli_zhang",')
    assert only(tmp_path, capsys, text) == (
        f"""{n}: projects.0.chain.1.members.1: 'jianli_zhang': write a numeric id or "@username\""""
    )


def test_member_table_with_wrong_id_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`{ id = "2001" }` is a type error at the member's line, key ending in `.id`."""
    text = VALID.replace("{ id = 2001,", '{ id = "2001",')
    n = line_with(text, '{ id = "2001"')
    assert only(tmp_path, capsys, text) == (
        f"{n}: projects.1.chain.0.members.0.id: expected an integer, got string '2001'"
    )


def test_duplicate_chat_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The second project with the same chat_id is reported at its chat_id, naming the first."""
    text = VALID.replace("chat_id = -1002", "chat_id = -1001")
    first, second = line_with(text, "chat_id = -1001"), line_with(text, "chat_id = -1001", 2)
    assert only(tmp_path, capsys, text) == (
        f"{second}: projects.1.chat_id: chat_id -1001 is already used by projects.0.chat_id "
        f"(line {first})"
    )


def test_project_without_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A project with no [[projects.chain]] is reported at its [[projects]] header."""
    text = VALID[: VALID.index("  [[projects.chain]]\n  role = \"安全员\"\n  members = [{")]
    n = line_with(text, "[[projects]]", 2)
    assert only(tmp_path, capsys, text) == (
        f"{n}: projects.1.chain: a project needs a chain: add at least one [[projects.chain]] level"
    )


def test_project_with_empty_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`chain = []` is reported at that line."""
    text = VALID[: VALID.index("  [[projects.chain]]\n  role = \"安全员\"\n  members = [{")]
    text += "chain = []\n"
    n = line_with(text, "chain = []")
    assert only(tmp_path, capsys, text).startswith(f"{n}: projects.1.chain: a project needs")


@pytest.mark.parametrize("value", ['"0s"', '"0m"'])
def test_deadline_not_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """A deadline of zero is refused at its line."""
    text = VALID.replace('deadline = "1h"', f"deadline = {value}")
    n = line_with(text, f"deadline = {value}")
    assert only(tmp_path, capsys, text) == (
        f"{n}: projects.1.chain.0.deadline: must be longer than 0s"
    )


def test_unknown_timezone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown IANA zone is reported at the timezone line."""
    text = VALID.replace("Asia/Shanghai", "Asia/Beijing")
    assert only(tmp_path, capsys, text) == (
        "4: defaults.timezone: unknown timezone 'Asia/Beijing' (use an IANA name such as "
        "Asia/Shanghai)"
    )


@pytest.mark.parametrize("factor", ["0", "0.0", "1.5", "-0.5"])
def test_critical_factor_outside_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], factor: str
) -> None:
    """critical_factor must lie in (0, 1]; anything else names line 5."""
    text = VALID.replace("critical_factor = 0.5", f"critical_factor = {factor}")
    assert only(tmp_path, capsys, text).startswith("5: defaults.critical_factor: must be in (0, 1]")


def test_critical_factor_one_is_allowed() -> None:
    """1 is inside (0, 1]: critical hazards then keep the normal deadlines."""
    assert parse_config(VALID.replace("= 0.5", "= 1")).defaults.critical_factor == 1


def test_toml_syntax_error_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A syntax error is one line with the line number where the parser stopped."""
    text = VALID.replace('role = "监理"', 'role = "监理')
    n = line_with(text, 'role = "监理')
    line = only(tmp_path, capsys, text)
    assert line.startswith(f"{n}: (syntax): TOML syntax: ")


def test_webhook_mode_needs_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """mode = "webhook" without [telegram.webhook] points at the [telegram] table."""
    text = VALID + '\n[telegram]\nmode = "webhook"\n'
    n = line_with(text, "[telegram]")
    assert only(tmp_path, capsys, text).startswith(f'{n}: telegram: mode = "webhook" needs')


def test_a_key_under_the_wrong_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A top-level key written after a [table] header is explained, not "did you mean" itself."""
    text = VALID.replace("admins = [111]\n", "") + "admins = [111]\n"
    n = line_with(text, "admins = [111]")
    assert only(tmp_path, capsys, text) == (
        f"{n}: projects.1.chain.0.admins: `admins` does not belong in this table (a key written "
        "below a [table] header belongs to that table)"
    )


def test_no_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file without any [[projects]] says so."""
    assert only(tmp_path, capsys, "admins = [1]\n") == (
        "1: projects: no project: add at least one [[projects]] table"
    )


def test_working_hours_errors_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown day and an impossible interval are each reported at their own line."""
    text = VALID + (
        "\n[projects.working_hours]\n"
        'days = ["mon", "funday"]\n'
        "hours = [\n"
        '  "08:00-12:00",\n'
        '  "13:00-25:00",\n'
        "]\n"
    )
    code, lines = check(tmp_path, capsys, text)
    assert code == 2
    assert lines[0].startswith(f"{line_with(text, 'funday')}: projects.1.working_hours.days.1: ")
    assert lines[1] == (
        f"{line_with(text, '13:00-25:00')}: projects.1.working_hours.hours.1: "
        "'13:00-25:00': not a time of day"
    )


def test_overlapping_working_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Overlapping intervals are reported at the hours line."""
    text = VALID + '[projects.working_hours]\nhours = ["08:00-12:00", "11:00-13:00"]\n'
    n = line_with(text, "hours = [")
    assert only(tmp_path, capsys, text) == f"{n}: projects.1.working_hours.hours: intervals overlap"


def test_every_problem_at_once_sorted_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several mistakes give one line each, in file order, so one run finds them all."""
    text = (
        VALID.replace("Asia/Shanghai", "Mars")
        .replace("members = [1001]", "members = []")
        .replace("chat_id = -1002", "chat_id = -1001")
    )
    code, lines = check(tmp_path, capsys, text)
    assert code == 2
    numbers = [int(line.split(":")[0]) for line in lines]
    assert numbers == sorted(numbers)
    assert [line.split(": ")[1] for line in lines] == [
        "defaults.timezone",
        "projects.0.chain.0.members",
        "projects.1.chat_id",
    ]


def test_parse_config_raises_located_problems() -> None:
    """The library API carries the same line and key as the command line."""
    with pytest.raises(ConfigError) as caught:
        parse_config(VALID.replace('deadline = "1h"', 'deadline = "-1h"'))
    [problem] = caught.value.problems
    assert (problem.line, problem.key) == (line_with(VALID, 'deadline = "1h"'), "projects.1.chain.0.deadline")


def test_positions_of_tables_keys_and_elements() -> None:
    """The position map knows array-of-table elements, dotted keys, quoted keys and elements."""
    text = (
        "a.b = 1\n"
        '"q.k" = 2\n'
        "s = '''x\ny'''\n"
        "[[t]]\n"
        "[[t]]\n"
        "v = [\n  1, # c\n  { w = 2 },\n]\n"
        "[t.sub]\n"
        "z = 3\n"
    )
    lines = key_lines(text)
    assert lines[("a", "b")] == 1
    assert lines[("q.k",)] == 2
    assert lines[("s",)] == 3
    assert lines[("t", 0)] == 5
    assert lines[("t", 1)] == 6
    assert lines[("t", 1, "v", 0)] == 8
    assert lines[("t", 1, "v", 1, "w")] == 9
    assert lines[("t", 1, "sub")] == 11
    assert lines[("t", 1, "sub", "z")] == 12


def test_a_valid_config_is_not_scanned_for_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines are found only to place a problem: a valid file is read without the scan (it took
    70% of reading 500 projects), and a file with a problem still gets its lines."""

    def scan(_self: object) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr("bot.configfile._Scanner.document", scan)
    assert parse_config(VALID).projects
    with pytest.raises(AssertionError, match="scanned"):
        parse_config(VALID + "unknown_key = 1\n")


def test_no_traceback_for_a_directory_or_binary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory or a non-UTF-8 file is one clear line and exit 2."""
    assert main(["check-config", str(tmp_path)]) == 2
    assert "cannot read the file" in capsys.readouterr().err
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00admins")
    assert main(["check-config", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_example_config_shows_every_key() -> None:
    """config.example.toml is the documentation: every key of every table appears in it."""
    import re

    from pydantic import BaseModel

    from bot.config import Config

    example = (Path(__file__).parent.parent / "config.example.toml").read_text(encoding="utf-8")
    written = set(re.findall(r"^[#\s]*([a-z_]+)\s*=", example, re.MULTILINE))
    written |= set(re.findall(r"[{,]\s*([a-z_]+)\s*=", example))
    written |= set(re.findall(r"^[#\s]*\[+([a-z_.]+)\]+", example, re.MULTILINE))
    written = {part for key in written for part in key.split(".")}

    def keys(model: type[BaseModel]) -> set[str]:
        found = set(model.model_fields)
        for field in model.model_fields.values():
            for arg in (*getattr(field.annotation, "__args__", ()), field.annotation):
                inner = getattr(arg, "__args__", (arg,))
                for candidate in (*inner, arg):
                    origin = getattr(candidate, "__origin__", None)
                    for t in (candidate, origin, *getattr(candidate, "__metadata__", ())):
                        if isinstance(t, type) and issubclass(t, BaseModel):
                            found |= keys(t)
        return found

    missing = keys(Config) - written
    assert not missing, f"config.example.toml lacks {sorted(missing)}"

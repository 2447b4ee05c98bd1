"""The documents are current: those derived from the catalogue, and the settings of `serve` as
the pages name them (docs/cli.md's table is written from config.Settings; every other page that
gives a setting's default or variable is checked against it)."""

import re
from pathlib import Path

import click

from rdevents.catalogue import EVENT_TYPES
from rdevents.config import markdown_table, serve_options
from rdevents.reference import markdown

ROOT = Path(__file__).resolve().parents[2]


def test_event_reference_is_generated_from_the_catalogue():
    assert (ROOT / "docs" / "events.md").read_text() == markdown(), (
        "docs/events.md is stale: run `python -m rdevents.reference > docs/events.md`")


def test_event_reference_lists_every_type_and_field():
    text = markdown()
    for event_type in EVENT_TYPES.values():
        assert f"## {event_type.name}\n" in text
        for field in event_type.fields:
            assert f"| `{field.name}` |" in text


def _serve_options() -> list[str]:
    from rdevents.cli import serve

    return [name for param in serve.params for name in param.opts if name.startswith("--")]


def test_serve_takes_the_settings_of_the_table():
    """`serve`'s options are made from config.Settings: one a setting, in its order, with its
    variable and default."""
    from rdevents.cli import serve

    # A switch's flag names both forms (--x/--no-x); click names the first.
    table = [(s.flag.split("/")[0], s.variable, s.default_text if s.option.parse else s.default)
             for s in serve_options()]
    taken = [(param.opts[0], param.envvar, param.default)
             for param in serve.params if isinstance(param, click.Option)]
    assert taken == table


def test_the_settings_table_of_the_cli_reference_is_written_from_the_settings():
    lines = (ROOT / "docs" / "cli.md").read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "python -m rdevents.config" in line) + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    assert "".join(lines[start:end]) == markdown_table(), (
        "docs/cli.md's table of settings is stale: put the output of `python -m rdevents.config` "
        "in its place")


def _defaults() -> dict[str, tuple[str, set[str]]]:
    """Each setting's option: its variable, and how a page may write its default."""
    written = {}
    for setting in serve_options():
        ways = {setting.default_text or "none"}
        number = setting.default
        if isinstance(number, (int, float)) and not isinstance(number, bool) and number % 1 == 0:
            ways.add(f"{int(number):,}")
        written[setting.flag] = (setting.variable, ways)
    return written


_PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
_CELL_OPTION = re.compile(r"^`(--[a-z-]+)[^`]*`(?: \(`(RDEVENTS_[A-Z_]+)`\))?$")
_DEFAULT_IN_PARENTHESES = re.compile(r"`(--[a-z-]+)` \(([\d,.]+)\)")
_SYNOPSIS_OPTION = re.compile(r"\[(--[a-z-]+) ([^\]\s]+)\]")


def _begins_with(cell: str, ways: set[str]) -> bool:
    """Whether a cell begins with one of `ways`, in backquotes or not, and not with more digits."""
    text = cell.removeprefix("`")
    return any(text.startswith(way) and not text[len(way):][:1].isdigit() for way in ways)


def _row_problems(cells: list[str], defaults: dict[str, tuple[str, set[str]]]) -> list[str]:
    """A table row naming a setting's option: the next cell (after one with its variable, if
    any) begins with its default, and a variable named with it is its own."""
    problems = []
    for index, cell in enumerate(cells):
        named = _CELL_OPTION.match(cell)
        if named is None or named.group(1) not in defaults:
            continue
        option, named_variable = named.groups()
        own_variable, ways = defaults[option]
        after = cells[index + 1:]
        if after and after[0].startswith("`RDEVENTS_"):
            named_variable = after[0].strip("`")
            after = after[1:]
        if named_variable not in (None, own_variable):
            problems.append(f"{option} is read from {own_variable}, not {named_variable}")
        if after and not _begins_with(after[0], ways):
            problems.append(f"{option}'s default is {' or '.join(sorted(ways))}, not "
                            f"{after[0]!r}")
    return problems


def test_the_pages_give_each_setting_its_default_and_variable():
    """Every page that names a setting of `serve` with a value gives its default: in a table
    (see _row_problems), as `--option` (default) in a sentence, and as [--option default] in a
    synopsis of `rdevents serve`."""
    defaults = _defaults()
    wrong = []
    for page in _PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            found = []
            if line.lstrip().startswith("|"):
                found += _row_problems([c.strip() for c in line.strip().strip("|").split("|")],
                                       defaults)
            given = _DEFAULT_IN_PARENTHESES.findall(line)
            if "rdevents serve" in line:
                given += _SYNOPSIS_OPTION.findall(line)
            found += [f"{option}'s default is not {value}" for option, value in given
                      if option in defaults and value not in defaults[option][1]]
            wrong += [f"{page.name}:{number}: {problem}" for problem in found]
    assert wrong == []


def test_every_limit_is_in_the_security_page():
    """docs/security.md states every limit with its setting."""
    page = (ROOT / "docs" / "security.md").read_text()
    limits = [o for o in _serve_options()
              if o.startswith(("--max-", "--sign-in-", "--webhook-concurrency",
                               "--webhook-allowed", "--forwarded-", "--token-cache",
                               "--rate-limits"))
              or o.endswith("-timeout")]
    assert len(limits) > 15
    assert [o for o in limits if f"`{o}" not in page] == []

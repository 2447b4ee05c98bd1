"""The documents are current: those derived from the catalogue, and the settings that docs/cli.md
and docs/security.md name."""

from pathlib import Path

from rdevents.catalogue import EVENT_TYPES
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


def test_every_serve_option_is_in_the_cli_reference():
    reference = (ROOT / "docs" / "cli.md").read_text()
    assert [o for o in _serve_options() if f"`{o}`" not in reference] == []


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

"""An action patch is checked field by field before anything is sent."""

from __future__ import annotations

import pytest

from processor import action_patch
from processor.errors import InvalidActionPatch

GOOD = {"id": "action_123", "status": "PUBLISHED", "config": {"maxRetries": 3}}


def test_a_good_patch_passes_and_only_the_contract_fields_are_sent() -> None:
    printed_by_get = {**GOOD, "updatedTimestamp": "2026-12-01T10:00:00.000Z"}

    sent = action_patch.checked(printed_by_get, "action_123", "patch.json")

    assert sent == GOOD
    assert action_patch.problems(GOOD, "action_123") == []


def test_every_problem_is_listed_by_field_in_field_order() -> None:
    body = {"id": "action 123", "status": "ON", "config": [], "staus": "DRAFT"}

    found = action_patch.problems(body, "action_123")

    assert found == [
        "config: [] is not of type 'object'",
        "id: 'action 123' does not match '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'",
        "id: 'action 123' is not the action named on the command line ('action_123')",
        "status: 'ON' is not one of ['DRAFT', 'PUBLISHED', 'DEPRECATED']",
        "staus: is not a field of an action patch (id, status, config)",
    ]


def test_each_missing_field_is_named_once() -> None:
    assert action_patch.problems({}, "action_123") == [
        "config: is required",
        "id: is required",
        "status: is required",
    ]
    assert action_patch.problems({"id": 7, "status": "DRAFT"}, "a") == [
        "config: is required",
        "id: 7 is not of type 'string'",
    ]


def test_a_patch_for_another_action_is_refused_even_when_well_formed() -> None:
    with pytest.raises(InvalidActionPatch) as refused:
        action_patch.checked({**GOOD, "id": "action_b"}, "action_123", "p.json")

    assert refused.value.source == "p.json"
    assert refused.value.problems == [
        "id: 'action_b' is not the action named on the command line ('action_123')"
    ]


def test_an_id_with_a_trailing_newline_is_not_the_action() -> None:
    found = action_patch.problems({**GOOD, "id": "action_123\n"}, "action_123")

    assert found == [
        "id: 'action_123\\n' is not the action named on the command line ('action_123')"
    ]


@pytest.mark.parametrize("body", [[GOOD], "PUBLISHED", None, 3])
def test_a_body_that_is_not_an_object_is_a_problem_of_the_body(body: object) -> None:
    found = action_patch.problems(body, "action_123")

    assert len(found) == 1
    assert found[0].startswith("body: ")
    assert found[0].endswith("is not of type 'object'")


def test_text_that_is_not_json_says_where_it_breaks() -> None:
    with pytest.raises(InvalidActionPatch) as refused:
        action_patch.parse('{"id": "action_123",\n "status": }', "p.json")

    assert refused.value.problems == [
        "body: is not JSON (Expecting value, line 2, column 12)"
    ]


def test_a_long_offending_value_is_cut_in_the_message() -> None:
    found = action_patch.problems({**GOOD, "config": "x" * 5000}, "action_123")

    assert len(found) == 1
    assert found[0].startswith("config: 'xxx")
    assert found[0].endswith("...")
    assert len(found[0]) < 300

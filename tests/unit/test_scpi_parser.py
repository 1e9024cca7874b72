"""Unit tests of the virtual SCPI switch's channel-list parser, header matcher and error queue."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.virtual_lab.scpi_switch import (
    ErrorQueue,
    ScpiCode,
    ScpiError,
    parse_channel_list,
    resolve_header,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(@1)", [1]),
        ("(@1,3:4)", [1, 3, 4]),
        ("( @ 2 : 4 , 7 )", [2, 3, 4, 7]),
        ("(@4:2)", [4, 3, 2]),
        ("(@1,1,1:2)", [1, 2]),
        ("(@16)", [16]),
    ],
)
def test_valid_channel_lists(text: str, expected: list[int]) -> None:
    assert parse_channel_list(text, 16) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", ScpiCode.MISSING_PARAMETER),
        ("5", ScpiCode.DATA_TYPE_ERROR),
        ("(1,2)", ScpiCode.DATA_TYPE_ERROR),
        ("(@1,2", ScpiCode.COMMAND_ERROR),
        ("(@)", ScpiCode.COMMAND_ERROR),
        ("(@1,)", ScpiCode.COMMAND_ERROR),
        ("(@1:)", ScpiCode.COMMAND_ERROR),
        ("(@a)", ScpiCode.COMMAND_ERROR),
        ("(@-1)", ScpiCode.COMMAND_ERROR),
        ("(@0)", ScpiCode.DATA_OUT_OF_RANGE),
        ("(@17)", ScpiCode.DATA_OUT_OF_RANGE),
        ("(@1:17)", ScpiCode.DATA_OUT_OF_RANGE),
        ("(@" + "9" * 5000 + ")", ScpiCode.DATA_OUT_OF_RANGE),
    ],
)
def test_malformed_channel_lists_raise_typed_errors(text: str, code: ScpiCode) -> None:
    with pytest.raises(ScpiError) as info:
        parse_channel_list(text, 16)
    assert info.value.code is code


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet="(@):,; 0123456789-\u0663", max_size=30))
def test_random_text_never_crashes_the_parser(text: str) -> None:
    try:
        channels = parse_channel_list(text, 16)
    except ScpiError as e:
        assert e.code.code < 0
    else:
        assert channels and all(1 <= ch <= 16 for ch in channels)
        assert len(set(channels)) == len(channels)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 32), st.integers(1, 32)), min_size=1, max_size=6))
def test_generated_lists_round_trip(ranges: list[tuple[int, int]]) -> None:
    text = "(@" + ",".join(f"{a}:{b}" if a != b else str(a) for a, b in ranges) + ")"
    expected: list[int] = []
    for a, b in ranges:
        for ch in range(a, b + (1 if b >= a else -1), 1 if b >= a else -1):
            if ch not in expected:
                expected.append(ch)
    assert parse_channel_list(text, 32) == expected


@pytest.mark.parametrize(
    ("tokens", "handler"),
    [
        (["ROUT", "CLOS"], "close"),
        (["route", "close"], "close"),
        (["RoUtE", "OPEN?"], "query_open"),
        (["syst", "err?"], "next_error"),
        (["SYSTEM", "ERROR", "NEXT?"], "next_error"),
    ],
)
def test_header_short_and_long_forms(tokens: list[str], handler: str) -> None:
    found = resolve_header(tokens)
    assert found is not None and found[1] == handler


@pytest.mark.parametrize("tokens", [["ROU", "CLOS"], ["ROUT", "CLOSED"], ["ROUT", "CLOS?", "X"]])
def test_header_partial_forms_are_undefined(tokens: list[str]) -> None:
    assert resolve_header(tokens) is None


def test_error_queue_is_fifo_and_bounded() -> None:
    q = ErrorQueue(capacity=3)
    q.push(ScpiCode.UNDEFINED_HEADER)
    q.push(ScpiCode.DATA_OUT_OF_RANGE)
    q.push(ScpiCode.COMMAND_ERROR)
    q.push(ScpiCode.COMMAND_ERROR)
    assert [q.pop() for _ in range(4)] == [
        '-113,"Undefined header"',
        '-222,"Data out of range"',
        '-350,"Queue overflow"',
        '0,"No error"',
    ]

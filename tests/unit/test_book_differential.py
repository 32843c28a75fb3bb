"""Differential fuzz: the C book and the pure Python book give identical books and verdicts.

Random snapshots and diffs over a small price grid (so levels collide), spelled in many ways
("5", "5.0", "05.000", ".5", "5."), mixed with malformed and hostile levels: signs, exponents,
spaces, other scripts' digits (the Arabic-Indic "١" of issue 8), huge mantissas, too many
decimals, non-strings, wrong shapes. After every operation both books must answer the same and
hold the same levels, spelled the same, at the same exponent.

Integer levels (``apply_ints``, SBE's form) join the same operations: mantissas on the same grid
at many exponents, as int pairs or packed as in an SBE group, mixed with values outside SBE's
domain (past int64, exponents past int8, bools, floats, wrong shapes). And apply_ints on either
book must equal apply_diff, on either book, of the strings ``decimal_string`` spells them as.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer import _impl
from streamer.sansio import book as book_module
from streamer.sansio.book import INT64_MAX, Book, BookModel, decimal_string

pytestmark = pytest.mark.skipif(
    "c" not in book_module.available() or _impl.NO_EXTENSIONS,
    reason="the C book is not built (test_book_impl fails then) or STREAMER_NO_EXTENSIONS is set",
)

HOSTILE = [
    "",
    ".",
    "..",
    "-1",
    "+1",
    "1e5",
    "1E5",
    " 1",
    "1 ",
    "1\n",
    "١",
    "1.١",
    "١.5",
    "１",
    "NaN",
    "inf",
    "0x10",
    "1_000",
    "1..5",
    "9" * 25,
    "92233720368.54775808",
    "1." + "0" * 18 + "1",
    "0." + "0" * 30,
]
NON_STRINGS: list[object] = [1, 1.5, None, b"1", ["1"]]


@st.composite
def number(draw: st.DrawFn, zero_weight: int = 1) -> str:
    """A valid spelling of a value on a small grid, or at an unusual number of decimals."""
    if draw(st.integers(0, 9)) < zero_weight:
        whole, decimals = 0, 0
    else:
        whole = draw(st.integers(1, 40))
        decimals = draw(st.sampled_from([0, 1, 2, 8, 8, 8, 9, 12, 17, 18]))
    frac = draw(st.integers(0, min(10**decimals - 1, 3))) if decimals else 0
    text = f"{whole}.{frac:0{decimals}d}" if decimals else str(whole)
    style = draw(st.integers(0, 7))
    if style == 1:
        text += "." * ("." not in text) + "0" * draw(st.integers(1, 12))  # other spelling
    elif style == 2:
        text = "0" * draw(st.integers(1, 30)) + text
    elif style == 3 and text.startswith("0."):
        text = text[1:]  # ".5"
    elif style == 4 and "." not in text:
        text += "."  # "5."
    elif style == 5:
        text = draw(st.sampled_from(["92233720368.54775807", "90000000000", "0.00000001"]))
    return text


def value(kind: str) -> st.SearchStrategy[object]:
    good = number(zero_weight=0 if kind == "price" else 3)
    return st.one_of(
        good, good, good, good, good, good, st.sampled_from(HOSTILE), st.sampled_from(NON_STRINGS)
    )


level = st.one_of(
    *[st.builds(lambda p, q: [p, q], number(0), number(3))] * 12,
    st.builds(lambda p, q: [p, q], value("price"), value("qty")),
    st.builds(lambda p, q: (p, q), number(0), number(3)),
    st.builds(lambda p, q: [p, q, q], number(0), number(3)),
    st.sampled_from(["12", None, 5, []]),
)
side = st.lists(level, max_size=8)
clean_side = st.lists(st.builds(lambda p, q: [p, q], number(0), number(3)), max_size=12)

#: Exponents SBE may send: Binance's usual ones, none, positive, and far past 18 decimals.
exponent = st.sampled_from(
    [-8, -8, -8, -2, -3, -5, 0, -1, -9, -10, -12, -18, -19, -30, 3, -128, 127]
)


@st.composite
def mantissa(draw: st.DrawFn, exp: int, zero_weight: int = 0) -> int:
    """A mantissa at ``exp`` whose value lands on the string grid (1..40 and a few decimals),
    or an extreme of int64."""
    roll = draw(st.integers(0, 19))
    if roll < zero_weight:
        return 0
    if roll == 19:
        return draw(st.sampled_from([1, INT64_MAX, INT64_MAX - 1, 10**18, 92233720368_54775807]))
    whole = draw(st.integers(1, 40))
    frac = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))  # 0: fewer decimals than its spelling
    m = whole * 10**-exp + frac if exp <= 0 else whole
    return m if m <= INT64_MAX else draw(st.integers(1, INT64_MAX))


@st.composite
def int_side(draw: st.DrawFn, pexp: int, qexp: int, hostile: bool) -> object:
    """Integer levels of one side: pairs (tuples or lists) or packed bytes, maybe hostile."""
    pairs = draw(st.lists(st.tuples(mantissa(pexp), mantissa(qexp, zero_weight=5)), max_size=8))
    form = draw(st.integers(0, 9))
    if hostile and draw(st.booleans()):
        bad = draw(
            st.sampled_from(
                [0, -1, -(2**63), 2**63, 10**30, True, 1.5, "5", None, (1,), (1, 2, 3), 7]
            )
        )
        at = draw(st.integers(0, len(pairs)))
        if type(bad) is int:
            level: object = (bad, 1) if draw(st.booleans()) else (10**8, bad)
        else:
            level = bad if not isinstance(bad, int | float | str) else (bad, 1)
        return [*pairs[:at], level, *pairs[at:]]
    if form < 3:
        packed = struct.pack(f"<{2 * len(pairs)}q", *[v for pair in pairs for v in pair])
        if hostile and form == 0:
            return packed[: draw(st.integers(0, len(packed)))]  # maybe cut mid-level
        return (bytes, bytearray, memoryview)[form](packed)
    if form == 3:
        return [list(pair) for pair in pairs]
    return pairs


@st.composite
def int_diff(draw: st.DrawFn, hostile: bool = True) -> tuple[str, Any, Any]:
    pexp, qexp = draw(exponent), draw(exponent)
    bids = draw(int_side(pexp, qexp, hostile))
    asks = draw(int_side(pexp, qexp, hostile))
    if hostile and draw(st.integers(0, 19)) == 0:
        pexp = draw(st.sampled_from([128, -129, True, 1.0, None]))
    return ("ints", (bids, asks), (pexp, qexp))


operation = st.one_of(
    *[int_diff()] * 4,
    st.tuples(st.just("load"), clean_side, clean_side),
    st.tuples(st.just("load"), side, side),
    *[st.tuples(st.just("diff"), side, side)] * 6,
    st.tuples(st.just("diff"), st.just("not a list"), side),
    st.tuples(st.just("get"), value("price"), st.just(None)),
    st.tuples(st.just("top"), st.integers(-1, 20), st.just(None)),
    st.tuples(st.just("clear"), st.just(None), st.just(None)),
    st.tuples(st.just("touched"), st.integers(0, 40), st.just(None)),
)


def observe(book: BookModel) -> tuple[Any, ...]:
    """Everything a reader can see of a book."""
    return (
        book.exponent,
        book.bids.top(1000),
        book.asks.top(1000),
        len(book.bids),
        len(book.asks),
        book.bids.best(),
        book.asks.best(),
        book.is_crossed(),
        list(book.bids.levels()),
        list(book.asks.levels()),
    )


def run(book: BookModel, op: tuple[str, Any, Any], update_id: int) -> object:
    name, a, b = op
    if name == "load":
        return book.load(a, b)
    if name == "diff":
        return book.apply_diff(a, b, update_id)
    if name == "ints":
        return book.apply_ints(a[0], a[1], b[0], b[1], update_id)
    if name == "touched":
        return book.touched_since(a)
    if name == "get":
        return (book.bids.get(a), book.asks.get(a)) if type(a) is str else None
    if name == "top":
        return book.bids.top(a), book.asks.top(a)
    book.clear()
    return None


@settings(max_examples=600, deadline=None)
@given(st.integers(0, 12), st.integers(1, 6), st.lists(operation, min_size=1, max_size=30))
def test_c_and_python_books_agree_on_everything(
    exponent: int, journal: int, ops: list[Any]
) -> None:
    """Same operations, same answers, levels, spellings, exponent and journal, every step."""
    reference = Book(exponent, journal)
    twin = book_module._IMPLEMENTATIONS["c"](exponent, journal)
    for update_id, op in enumerate(ops, 1):
        assert run(twin, op, update_id) == run(reference, op, update_id), op
        assert observe(twin) == observe(reference), op


@settings(max_examples=200, deadline=None)
@given(clean_side, clean_side, st.lists(st.tuples(side, side), max_size=20))
def test_a_rejected_diff_leaves_both_books_exactly_as_they_were(
    bids: list[Any], asks: list[Any], diffs: list[tuple[Any, Any]]
) -> None:
    """Whatever a diff holds, -1 means the book (exponent included) did not change at all."""
    for make in (Book, book_module._IMPLEMENTATIONS["c"]):
        book = make(8)
        book.load(bids, asks)
        for diff_bids, diff_asks in diffs:
            before = observe(book)
            if book.apply_diff(diff_bids, diff_asks) < 0:
                assert observe(book) == before


def spelled(levels: Any, pexp: int, qexp: int) -> list[list[str]]:
    """The JSON-equivalent string levels of in-domain integer levels (pairs or packed)."""
    if isinstance(levels, bytes | bytearray | memoryview):
        flat = struct.unpack(f"<{len(bytes(levels)) // 8}q", bytes(levels))
        levels = list(zip(flat[::2], flat[1::2], strict=True))
    return [[decimal_string(p, pexp), decimal_string(q, qexp)] for p, q in levels]


strings_or_ints = st.one_of(
    st.tuples(st.just("load"), clean_side, clean_side),
    st.tuples(st.just("diff"), clean_side, clean_side),
    *[int_diff(hostile=False)] * 6,
    st.tuples(st.just("touched"), st.integers(0, 40), st.just(None)),
)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 12), st.lists(strings_or_ints, min_size=1, max_size=30))
def test_apply_ints_is_apply_diff_of_the_decimal_strings(exponent: int, ops: list[Any]) -> None:
    """apply_ints (C, Python) == apply_diff (C, Python) of decimal_string's spellings, always."""
    twin = book_module._IMPLEMENTATIONS["c"]
    books = [Book(exponent, 4), twin(exponent, 4), Book(exponent, 4), twin(exponent, 4)]
    for update_id, op in enumerate(ops, 1):
        if op[0] == "ints":
            (bids, asks), (pexp, qexp) = op[1], op[2]
            as_strings = ("diff", spelled(bids, pexp, qexp), spelled(asks, pexp, qexp))
            results = [run(book, op, update_id) for book in books[:2]]
            results += [run(book, as_strings, update_id) for book in books[2:]]
        else:
            results = [run(book, op, update_id) for book in books]
        assert results.count(results[0]) == 4, (op, results)
        seen = [observe(book) for book in books]
        assert seen.count(seen[0]) == 4, op

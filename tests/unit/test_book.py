"""The book's representation: exact integer order, exact strings, validation and rollback.

Every test runs against both implementations (the pure Python reference and the C twin).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from streamer.sansio.book import INT64_MAX, BookModel, new_book

pytestmark = pytest.mark.usefixtures("book_impl")

A = "1.00000000000000001"  # 17 decimals: these two round to the same float
B = "1.00000000000000002"
CAP = "92233720368.54775807"  # Binance's capped quantity: INT64_MAX at 8 decimals


def state(book: BookModel) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
    return book.bids.top(10_000), book.asks.top(10_000), book.exponent


def test_sides_order_best_first() -> None:
    """Bids read highest first, asks lowest first, whatever the arrival order."""
    book = new_book()
    assert book.load(
        [["1.5", "1"], ["3.25", "2"], ["2", "3"]], [["9", "1"], ["4.75", "2"], ["10", "3"]]
    )
    assert book.bids.top(3) == [("3.25", "2"), ("2", "3"), ("1.5", "1")]
    assert book.asks.top(2) == [("4.75", "2"), ("9", "1")]
    assert book.bids.best() == ("3.25", "2") and book.asks.best() == ("4.75", "2")
    assert len(book.bids) == 3 and book.bids.descending and not book.asks.descending
    assert book.bids.top(0) == [] and book.asks.top(-1) == []


def test_prices_with_more_decimals_rescale_the_book_exactly() -> None:
    """Two prices 1e-17 apart (one float) are two levels in exact order: the book rescales."""
    book = new_book()
    book.load([[A, "1"]], [])
    assert book.exponent == 17
    assert book.apply_diff([[B, "2"], ["0.5", "3"]], []) == 2
    assert book.bids.top(3) == [(B, "2"), (A, "1"), ("0.5", "3")]
    book.apply_diff([[A, "0"]], [])
    assert book.bids.top(3) == [(B, "2"), ("0.5", "3")]
    book.load([["10.5", "1"]], [])
    assert book.exponent == 8  # a snapshot starts again from the base exponent
    assert book.apply_diff([["10.000000000001", "1"]], []) == 1 and book.exponent == 12
    assert book.bids.top(2) == [("10.5", "1"), ("10.000000000001", "1")]


def test_snapshot_with_prices_sharing_a_float_loads_exactly() -> None:
    """A snapshot holding two prices with one float loads both, ordered by exact value."""
    book = new_book()
    book.load([], [[B, "2"], [A, "1"]])
    assert book.asks.top(2) == [(A, "1"), (B, "2")]


def test_crossing_is_judged_exactly() -> None:
    """A bid just below an ask with the same float is not crossed; equal prices are."""
    book = new_book()
    book.load([[A, "1"]], [[B, "1"]])
    assert not book.is_crossed()
    book.load([[B, "1"]], [[B + "0", "1"]])
    assert book.is_crossed()
    book.load([], [[B, "1"]])
    assert not book.is_crossed()


def test_bad_level_rolls_back_the_whole_diff() -> None:
    """Updates, inserts and deletes made before a bad level are all undone, on both sides."""
    book = new_book()
    book.load([["10", "1"], ["9", "2"]], [["11", "1"], ["12", "2"]])
    before = state(book)
    result = book.apply_diff([["10", "5"], ["9", "0"], ["8", "7"]], [["11.5", "1"], ["12", "x"]])
    assert result == -1
    assert state(book) == before


def test_a_rejected_diff_undoes_its_rescale_too() -> None:
    """A diff that rescaled the book and then hit a bad level leaves the exponent as it was."""
    book = new_book()
    book.load([["10", "1"]], [["11", "1"]])
    assert book.apply_diff([["10.0000000001", "1"]], [["11", "-1"]]) == -1
    assert state(book) == ([("10", "1")], [("11", "1")], 8)


def test_other_spelling_updates_the_held_level() -> None:
    """'10.000' reaches the level held as '10'; its first spelling stays."""
    book = new_book()
    book.load([["10", "1"]], [])
    book.apply_diff([["10.000", "4"]], [])
    assert book.bids.top(5) == [("10", "4")] and book.bids.get("10.0") == "4"
    assert book.bids.get("10") == "4" and book.bids.get("9") is None
    assert book.bids.get("x") is None and book.bids.get("0") is None
    book.apply_diff([["10.00", "0.000"]], [])
    assert len(book.bids) == 0


def test_levels_yield_exact_values_best_first() -> None:
    """levels() gives Decimal values with the strings, best first, on both sides."""
    book = new_book()
    book.load([["1", "1"], ["2", "1"]], [["3", "1"], ["4", "1"]])
    assert [v for v, _, _ in book.bids.levels()] == [Decimal(2), Decimal(1)]
    assert [(p, q) for _, p, q in book.asks.levels()] == [("3", "1"), ("4", "1")]


def test_capped_quantity_and_largest_price_stay_exact() -> None:
    """Quantities are never bounded; the largest int64 price mantissa is held, one more is not."""
    book = new_book()
    largest = "92233720368.54775807"
    assert book.load([[largest, CAP]], [])
    assert book.bids.top(1) == [(largest, CAP)]
    assert book.apply_diff([["92233720368.54775808", "1"]], []) == -1
    assert book.apply_diff([["1", CAP + "0000"]], []) == 1
    assert book.bids.get("1") == CAP + "0000"


def test_a_rescale_that_would_overflow_is_malformed() -> None:
    """A price needing more decimals is refused when a held price would no longer fit an int64."""
    book = new_book()
    book.load([["90000000000", "1"]], [])  # 9e18 at 8 decimals
    before = state(book)
    assert book.apply_diff([["1.000000001", "1"]], []) == -1
    assert state(book) == before
    assert book.apply_diff([["1." + "0" * 18 + "1", "1"]], []) == -1  # 19 decimals: never


@pytest.mark.parametrize(
    "price",
    ["0", "0.00000000", "-1", "1e3", " 1", "١", "1..0", ".", "", "9" * 20, "1" + "0" * 5000],
)
def test_hostile_prices_are_malformed(price: str) -> None:
    """Zero, signs, exponents, spaces, other digits and huge mantissas are never a price."""
    book = new_book()
    book.load([["5", "1"]], [["6", "1"]])
    before = state(book)
    assert book.apply_diff([["5", "2"], [price, "1"]], []) == -1
    assert book.apply_diff([], [[price, "0"]]) == -1
    assert state(book) == before


def test_leading_zeros_are_just_another_spelling() -> None:
    """Thousands of leading zeros are one value, not an overflow (both twins must agree)."""
    book = new_book()
    book.load([["5", "1"]], [])
    assert book.apply_diff([["0" * 5000 + "5.0", "3"]], []) == 0
    assert book.bids.top(2) == [("5", "3")]


@pytest.mark.parametrize(
    "levels",
    [
        [["1", "1", "1"]],
        [("1", "1")],
        ["11"],
        [[1, "1"]],
        [["1", 1]],
        [["1", None]],
        [[["1"], "1"]],
        5,
        None,
    ],
)
def test_malformed_level_shapes_never_raise(levels: object) -> None:
    """Whatever a level is made of, apply_diff answers -1 and changes nothing."""
    book = new_book()
    book.load([["5", "1"]], [])
    before = state(book)
    assert book.apply_diff(levels, []) == -1  # type: ignore[arg-type]
    assert state(book) == before


def test_snapshot_the_book_cannot_hold_is_refused() -> None:
    """A snapshot with a price past int64 or a bad level loads nothing and says so."""
    book = new_book()
    book.load([["5", "1"]], [])
    assert not book.load([["5", "1"], ["92233720368.54775808", "1"]], [])
    assert state(book) == ([], [], 8)
    assert not book.load([["5", "x"]], [])
    assert not book.load(None, [])  # type: ignore[arg-type]
    assert book.load([("5", "1"), ["5.0", "2"], ["6", "0"]], [])  # tuples; the later 5 wins
    assert book.bids.top(5) == [("5.0", "2")]


def test_exponent_is_bounded() -> None:
    """A book's base exponent is 0..18."""
    assert new_book(0).exponent == 0
    with pytest.raises(ValueError):
        new_book(19)
    assert INT64_MAX == 2**63 - 1


def test_every_valid_quantity_spelling_comes_back_as_received() -> None:
    """Canonical or not ("00.5", ".5", "5.", 30 digits), a quantity reads back as it was sent."""
    book = new_book()
    spellings = ["0.00123000", "00.5", ".5", "5.", "1" * 30, "0." + "0" * 25 + "1", "7", CAP]
    for i, qty in enumerate(spellings, 1):
        assert book.apply_diff([[str(i), qty]], []) == 1
    assert [q for _, q in book.bids.top(20)] == spellings[::-1]
    assert book.bids.get("1.0") == "0.00123000"


def test_the_journal_names_the_prices_of_later_diffs() -> None:
    """touched_since(L) gives the prices of applied diffs with an id above L, by value."""
    book = new_book(journal_size=2)
    book.load([["5", "1"]], [["6", "1"]])
    assert book.touched_since(0) == ([], [])
    book.apply_diff([["5.0", "2"]], [], 11)
    assert book.touched_since(10) == ([Decimal(5)], [])
    book.apply_diff([], [["6.50", "1"], ["7", "0"]], 12)
    assert book.apply_diff([["x", "1"]], [], 13) == -1  # a rejected diff is not journaled
    assert book.touched_since(11) == ([], [Decimal("6.5"), Decimal(7)])
    assert book.touched_since(10) is None  # full: diffs between 10 and 11 may be forgotten
    book.apply_diff([["4", "1"]], [], 14)
    assert book.touched_since(12) == ([Decimal(4)], [])
    book.clear()
    assert book.touched_since(0) == ([], [])

"""The book's representation: exact order, exact strings, validation and rollback."""

from __future__ import annotations

from decimal import Decimal

from streamer.sansio.book import Book, BookSide

A = "1.00000000000000001"  # these two round to the same float
B = "1.00000000000000002"


def test_sides_order_best_first() -> None:
    """Bids read highest first, asks lowest first, whatever the arrival order."""
    book = Book()
    book.load([["1.5", "1"], ["3.25", "2"], ["2", "3"]], [["9", "1"], ["4.75", "2"], ["10", "3"]])
    assert book.bids.top(3) == [("3.25", "2"), ("2", "3"), ("1.5", "1")]
    assert book.asks.top(2) == [("4.75", "2"), ("9", "1")]
    assert book.bids.best() == ("3.25", "2") and book.asks.best() == ("4.75", "2")


def test_prices_sharing_a_float_stay_distinct_and_ordered() -> None:
    """Two prices that round to one float are two levels in exact order (Decimal keys kick in)."""
    side = BookSide(descending=True)
    side.load([[A, "1"]])
    assert side.apply([[B, "2"], ["0.5", "3"]], []) == 2
    assert side.top(3) == [(B, "2"), (A, "1"), ("0.5", "3")]
    side.apply([[A, "0"]], [])
    assert side.top(3) == [(B, "2"), ("0.5", "3")]


def test_snapshot_with_prices_sharing_a_float_loads_exactly() -> None:
    """A snapshot holding two prices with one float loads both, ordered by exact value."""
    side = BookSide(descending=False)
    side.load([[B, "2"], [A, "1"]])
    assert side.top(2) == [(A, "1"), (B, "2")]


def test_crossing_is_judged_exactly() -> None:
    """A bid just below an ask with the same float is not crossed; equal prices are."""
    book = Book()
    book.load([[A, "1"]], [[B, "1"]])
    assert not book.is_crossed()
    book.load([[B, "1"]], [[B + "0", "1"]])
    assert book.is_crossed()


def test_bad_level_rolls_back_the_whole_diff() -> None:
    """Updates, inserts and deletes made before a bad level are all undone, on both sides."""
    book = Book()
    book.load([["10", "1"], ["9", "2"]], [["11", "1"], ["12", "2"]])
    before = (book.bids.top(10), book.asks.top(10))
    result = book.apply_diff([["10", "5"], ["9", "0"], ["8", "7"]], [["11.5", "1"], ["12", "x"]])
    assert result == -1
    assert (book.bids.top(10), book.asks.top(10)) == before


def test_other_spelling_updates_the_held_level() -> None:
    """'10.000' reaches the level held as '10'; its first spelling stays."""
    side = BookSide(descending=True)
    side.load([["10", "1"]])
    side.apply([["10.000", "4"]], [])
    assert side.top(5) == [("10", "4")] and side.get("10.0") == "4"
    side.apply([["10.00", "0.000"]], [])
    assert len(side) == 0


def test_levels_yield_exact_values_best_first() -> None:
    """levels() gives Decimal values with the strings, best first, on both sides."""
    book = Book()
    book.load([["1", "1"], ["2", "1"]], [["3", "1"], ["4", "1"]])
    assert [v for v, _, _ in book.bids.levels()] == [Decimal(2), Decimal(1)]
    assert [v for v, _, _ in book.asks.levels()] == [Decimal(3), Decimal(4)]

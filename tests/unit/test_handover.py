"""The make-before-break handover rule (streamer.sansio.handover), pure."""

from __future__ import annotations

from streamer.sansio.handover import MAX_HELD, Handover
from tests.helpers import diff


def test_new_diffs_are_held_until_they_continue_what_the_book_has_seen() -> None:
    """Spot: a new-connection diff ahead of the book is held; once the old connection has
    fed up to U - 1 the held diffs come out in order and the old one is ignored after."""
    h: Handover[str] = Handover(["BTCUSDT"], futures=False)
    assert h.new(diff(105, 107), "a", seen=100) == []  # 101..104 still in flight on the old one
    assert h.new(diff(108, 110), "b", seen=100) == []
    assert h.waiting == 1 and h.pending == 1
    assert h.old(diff(101, 104)) is True  # still fed by the old connection
    assert h.poll("BTCUSDT", seen=104) == ["a", "b"]
    assert h.pending == 0
    assert h.old(diff(105, 107)) is False and h.ignored == 1
    assert h.new(diff(111, 112), "c", seen=110) == ["c"]  # handed over: straight through


def test_stale_held_diffs_hand_over_at_once() -> None:
    """A new stream behind the book bridges at once; its old diffs then drop as stale."""
    h: Handover[str] = Handover(["BTCUSDT"], futures=False)
    assert h.new(diff(90, 95), "x", seen=100) == ["x"]


def test_futures_hand_over_by_pu_and_nothing_seen_hands_over_at_once() -> None:
    """Futures: held until seen >= pu of the first held diff; a book that has seen nothing
    takes the new stream at once."""
    h: Handover[str] = Handover(["BTCUSDT", "ETHUSDT"], futures=True)
    assert h.new(diff(210, 220, pu=200), "f", seen=190) == []
    assert h.poll("BTCUSDT", seen=200) == ["f"]
    assert h.new(diff(5, 9, pu=4, symbol="ETHUSDT"), "e", seen=None) == ["e"]


def test_finish_hands_everything_over_and_a_far_behind_old_stream_is_not_waited_for() -> None:
    """finish() returns every held diff, symbol by symbol; past MAX_HELD a symbol is handed
    over without waiting (a real hole then shows as a gap)."""
    h: Handover[int] = Handover(["BTCUSDT", "ETHUSDT"], futures=False)
    h.new(diff(50, 51), 1, seen=10)
    h.new(diff(60, 61, symbol="ETHUSDT"), 2, seen=10)
    assert h.finish() == [1, 2] and h.pending == 0
    h2: Handover[int] = Handover(["BTCUSDT"], futures=False)
    out: list[int] = []
    for i in range(MAX_HELD):
        out += h2.new(diff(1000 + 2 * i, 1001 + 2 * i), i, seen=10)
    assert out == list(range(MAX_HELD))

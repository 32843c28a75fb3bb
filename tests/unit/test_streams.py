"""Stream names, combined URLs, control messages and replies, and sharding over connections."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamer.sansio.streams import (
    MAX_STREAMS_PER_CONNECTION,
    ControlReply,
    Shards,
    combined_url,
    depth_stream,
    parse_control_reply,
    subscribe_message,
    symbol_of,
)

# -- names and URLs ----------------------------------------------------------------------------


def test_depth_stream_names_are_lowercase_with_an_optional_speed() -> None:
    """BTCUSDT -> btcusdt@depth@100ms, or btcusdt@depth at the venue's default speed."""
    assert depth_stream("BTCUSDT") == "btcusdt@depth@100ms"
    assert depth_stream("BTCUSDT", 500) == "btcusdt@depth@500ms"
    assert depth_stream("BTCUSDT", None) == "btcusdt@depth"


@pytest.mark.parametrize("symbol", ["", "BTC/USDT", "BTC@USDT", "BTC USDT", "BTC?x=1"])
def test_depth_stream_refuses_symbols_that_would_change_the_name_or_url(symbol: str) -> None:
    """A symbol holding '/', '@', '?', a space (or nothing) would corrupt the stream list."""
    with pytest.raises(ValueError, match="not a symbol"):
        depth_stream(symbol)


@pytest.mark.parametrize("speed", [0, -100, True])
def test_depth_stream_refuses_a_bad_speed(speed: int) -> None:
    """The speed is a positive number of milliseconds (a bool is not one)."""
    with pytest.raises(ValueError, match="speed_ms"):
        depth_stream("BTCUSDT", speed)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "1000SHIBUSDT", "币安人生USDT", "BTC-240628"])
def test_symbol_of_inverts_depth_stream(symbol: str) -> None:
    """The symbol comes back uppercase from every depth stream name, Unicode ones included."""
    for speed in (100, None):
        assert symbol_of(depth_stream(symbol, speed)) == symbol


def test_symbol_of_is_total_on_names_without_a_symbol() -> None:
    """All-market streams and names without '@' belong to no symbol: "" rather than an error."""
    assert symbol_of("!bookTicker") == ""
    assert symbol_of("!serverShutdown") == ""
    assert symbol_of("btcusdt") == ""
    assert symbol_of("") == ""
    assert symbol_of("ethbtc@depth20@100ms") == "ETHBTC"


def test_combined_url_joins_streams_after_the_base() -> None:
    """Streams go into one /stream?streams=a/b/c, whatever the base's trailing slash."""
    streams = ["btcusdt@depth@100ms", "ethusdt@depth@100ms"]
    expected = (
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"
    )
    assert combined_url("wss://stream.binance.com:9443", streams) == expected
    assert combined_url("wss://stream.binance.com:9443/", streams) == expected
    assert (
        combined_url("wss://fstream.binance.com/public", ["btcusdt@depth"])
        == "wss://fstream.binance.com/public/stream?streams=btcusdt@depth"
    )


def test_combined_url_without_streams_opens_empty() -> None:
    """No streams: plain /stream, which opens with no subscription (protocol §9.4)."""
    assert combined_url("ws://127.0.0.1:8000", []) == "ws://127.0.0.1:8000/stream"


def test_combined_url_percent_encodes_unicode_stream_names() -> None:
    """Non-ASCII symbols are percent-encoded; '@' and '!' stay as they are."""
    url = combined_url("ws://h", [depth_stream("币安人生USDT"), "!bookTicker"])
    assert (
        url
        == "ws://h/stream?streams=%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9Fusdt@depth@100ms/!bookTicker"
    )
    assert url.isascii()


# -- control messages --------------------------------------------------------------------------


def test_subscribe_message_is_the_documented_json() -> None:
    """SUBSCRIBE/UNSUBSCRIBE frames carry method, params and id, as protocol §1.4 shows."""
    frame = subscribe_message("SUBSCRIBE", ["btcusdt@aggTrade", "btcusdt@depth"], 1)
    assert isinstance(frame, bytes)
    assert orjson.loads(frame) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@aggTrade", "btcusdt@depth"],
        "id": 1,
    }
    assert orjson.loads(subscribe_message("UNSUBSCRIBE", ("btcusdt@depth",), 312)) == {
        "method": "UNSUBSCRIBE",
        "params": ["btcusdt@depth"],
        "id": 312,
    }


@pytest.mark.parametrize(
    ("method", "streams", "request_id", "match"),
    [
        ("LIST_SUBSCRIPTIONS", ["a@depth"], 1, "method"),
        ("subscribe", ["a@depth"], 1, "method"),
        ("SUBSCRIBE", [], 1, "at least one"),
        ("SUBSCRIBE", ["a@depth"], -1, "unsigned"),
        ("SUBSCRIBE", ["a@depth"], 1 << 63, "unsigned"),
        ("SUBSCRIBE", ["a@depth"], True, "int"),
    ],
)
def test_subscribe_message_refuses_what_the_server_would_reject(
    method: str, streams: list[str], request_id: Any, match: str
) -> None:
    """Unknown methods, empty params and ids futures would refuse are caller errors."""
    with pytest.raises(ValueError, match=match):
        subscribe_message(method, streams, request_id)


@pytest.mark.parametrize(
    ("payload", "reply"),
    [
        ({"result": None, "id": 1}, ControlReply(1, True, None, "")),
        (
            {"result": ["btcusdt@depth"], "id": 3},
            ControlReply(3, True, None, "", ["btcusdt@depth"]),
        ),
        ({"result": True, "id": "a1b2"}, ControlReply("a1b2", True, None, "", True)),
        (
            {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 2},
            ControlReply(2, False, 2, "Invalid request: invalid stream"),
        ),
        (
            {"code": 0, "msg": "Unknown property", "id": 5},
            ControlReply(5, False, 0, "Unknown property"),
        ),
        (
            {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"},
            ControlReply(None, False, 3, "Invalid JSON: expected value at line 1 column 1"),
        ),
    ],
)
def test_control_replies_in_every_documented_form(
    payload: dict[str, Any], reply: ControlReply
) -> None:
    """Success, the wrapped error and the flat error (with or without id) all parse (§1.4)."""
    assert parse_control_reply(payload) == reply


@pytest.mark.parametrize(
    "payload",
    [
        {"stream": "btcusdt@depth", "data": {"e": "depthUpdate", "U": 1, "u": 2}},
        {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [], "a": []},
        {"lastUpdateId": 160, "bids": [], "asks": []},
        {"stream": "x", "data": {}, "id": 1, "result": None},
        {},
    ],
)
def test_data_frames_are_not_control_replies(payload: dict[str, Any]) -> None:
    """Stream data, raw events and partial books give None: the reader routes them as data."""
    assert parse_control_reply(payload) is None


def test_odd_control_replies_never_raise() -> None:
    """Wrong field types become code=None and a readable msg; huge messages are cut short."""
    assert parse_control_reply({"error": "boom", "id": 1}) == ControlReply(1, False, None, "boom")
    assert parse_control_reply({"error": {"code": "2", "msg": 5}, "id": 1}) == ControlReply(
        1, False, None, "5"
    )
    assert parse_control_reply({"error": {}, "id": 1}) == ControlReply(1, False, None, "")
    assert parse_control_reply({"code": True, "msg": None}) == ControlReply(None, False, None, "")
    long = parse_control_reply({"code": 2, "msg": "x" * 10_000, "id": 9})
    assert long is not None and len(long.msg) == 200
    assert parse_control_reply(["not", "a", "dict"]) is None  # type: ignore[arg-type]


# -- Shards ------------------------------------------------------------------------------------


def names(n: int, prefix: str = "S") -> list[str]:
    return [f"{prefix}{i}USDT" for i in range(n)]


def test_shards_fill_one_connection_up_to_1024_streams() -> None:
    """1024 symbols share shard 0; the 1025th opens shard 1 (protocol §1.3, §7.8)."""
    shards = Shards()
    assert MAX_STREAMS_PER_CONNECTION == 1024
    placed = [shards.add(s) for s in names(1025)]
    assert placed[0] == (0, True)
    assert set(placed[1:1024]) == {(0, False)}
    assert placed[1024] == (1, True)
    assert shards.shards() == [0, 1]
    assert len(shards.symbols(0)) == 1024 and shards.symbols(1) == ["S1024USDT"]


def test_removing_a_symbol_never_moves_the_others() -> None:
    """Every other symbol keeps its shard; the freed slot is refilled by the next new symbol."""
    shards = Shards(max_streams=3)
    for s in names(7):
        shards.add(s)
    before = {s: shards.shard_of(s) for s in names(7)}
    assert before == {f"S{i}USDT": i // 3 for i in range(7)}
    assert shards.remove("S1USDT") == 0
    assert {s: shards.shard_of(s) for s in names(7) if s != "S1USDT"} == {
        s: before[s] for s in names(7) if s != "S1USDT"
    }
    assert shards.shard_of("S1USDT") is None
    assert shards.add("NEWUSDT") == (0, False)  # the lowest shard with room, not shard 2
    assert shards.symbols(0) == ["S0USDT", "S2USDT", "NEWUSDT"]


def test_an_emptied_shard_is_reused_and_reported_as_new() -> None:
    """A shard whose symbols all left is dropped from shards() and is new again when refilled."""
    shards = Shards(max_streams=2)
    for s in names(5):
        shards.add(s)
    assert shards.remove("S2USDT") == 1
    assert shards.remove("S3USDT") == 1
    assert shards.shards() == [0, 2]
    assert shards.add("AUSDT") == (1, True)
    assert shards.add("BUSDT") == (1, False)
    assert shards.add("CUSDT") == (2, False)
    assert shards.add("DUSDT") == (3, True)


def test_adding_twice_or_removing_an_unknown_symbol_changes_nothing() -> None:
    """add() of a placed symbol returns its shard, not new; remove() of a stranger is None."""
    shards = Shards(max_streams=2)
    assert shards.add("BTCUSDT") == (0, True)
    assert shards.add("BTCUSDT") == (0, False)
    assert len(shards) == 1 and "BTCUSDT" in shards
    assert shards.remove("ETHUSDT") is None
    assert shards.symbols(0) == ["BTCUSDT"]
    assert shards.symbols(7) == [] and shards.symbols(-1) == []


def test_symbols_taking_several_streams_fill_shards_sooner() -> None:
    """With two streams per symbol a 1024-stream connection holds 512 symbols."""
    shards = Shards(streams_per_symbol=2)
    assert shards.capacity == 512
    placed = [shards.add(s) for s in names(513)]
    assert placed[511] == (0, False) and placed[512] == (1, True)
    with pytest.raises(ValueError):
        Shards(max_streams=1, streams_per_symbol=2)

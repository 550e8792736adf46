"""Chat text is cleaned before anyone sees it or the database keeps it."""

from __future__ import annotations

import pytest

from service.live.channel import ChannelError, clean_chat


def test_controls_and_lone_surrogates_are_dropped() -> None:
    assert clean_chat("hi\x00 \ud800there\x07\nbye") == "hi there\nbye"
    assert clean_chat("Kopi \U0001f375 ok") == "Kopi \U0001f375 ok"  # a real pair stays


def test_nothing_left_is_refused() -> None:
    with pytest.raises(ChannelError, match="Write something"):
        clean_chat("\x00\ud800 ")

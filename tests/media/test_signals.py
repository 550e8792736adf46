"""Signals from a generated recording: a loud burst and a scene cut at known times."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.moments import Signals, find
from media.signals import momentary_loudness, scene_changes
from tests import media_files


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s: a quiet tone with a loud burst at 12-13 s; the picture cuts at 8 s."""
    path = tmp_path_factory.mktemp("signals") / "session.mkv"
    media_files.ffmpeg(
        "-f", "lavfi", "-i", "color=c=blue:s=320x240:r=30:d=8",
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=12",
        "-f", "lavfi", "-i", "sine=f=300:d=20,volume='if(between(t,12,13),1,0.03)':eval=frame",
        "-filter_complex", "[0][1]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2",
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path))
    return path


def test_loudness_every_tenth_of_a_second_shows_the_burst(recording: Path) -> None:
    found = momentary_loudness(recording, timeout=60)
    assert len(found) >= 195  # every 0.1 s of 20 s, none lost
    loudest = max(found, key=lambda p: p[1])
    assert 12.0 <= loudest[0] <= 13.6  # momentary loudness is a 0.4 s window
    quiet = [lufs for t, lufs in found if 2 < t < 10]
    assert loudest[1] - max(quiet) > 20


def test_the_scene_cut_is_found(recording: Path) -> None:
    cuts = scene_changes(recording, timeout=60)
    assert any(abs(t - 8.0) < 0.1 for t in cuts), cuts


def test_the_finder_proposes_the_burst_from_real_signals(recording: Path) -> None:
    signals = Signals(duration=20, loudness=momentary_loudness(recording, timeout=60),
                      scenes=scene_changes(recording, timeout=60))
    (moment,) = find(signals)
    assert moment.start <= 12 and moment.end >= 13 and "loud moment" in moment.why
    assert moment.start == pytest.approx(8.0, abs=0.1)  # snapped to the cut

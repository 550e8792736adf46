"""The web rendition, checked stream by stream on every kind of source phones send."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media import normalise as n
from media.probe import probe
from tests import media_files

SPEC = n.RenditionSpec()


def streams(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of",
                          "json", str(path)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    found = {s["codec_type"]: s for s in data["streams"]}
    found["format"] = data["format"]
    return found


def keyframes(path: Path) -> list[int]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=key_frame,pict_type", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True)
    rows = [line.split(",") for line in out.stdout.split()]
    assert all(r[1] in {"I", "P"} for r in rows), "no B-frames"
    return [i for i, r in enumerate(rows) if r[0] == "1"]


def integrated_lufs(path: Path) -> float:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
                          "-af", "ebur128", "-f", "null", "-"], capture_output=True, text=True)
    found = re.findall(r"I:\s+(-?[\d.]+) LUFS", out.stderr)
    return float(found[-1])


def render(tmp: Path, make: Callable[[Path], Path], name: str) -> tuple[Path, dict[str, Any]]:
    src = make(tmp / name)
    dst = tmp / f"{name}.web.mp4"
    seen: list[float] = []
    info = probe(src, timeout=60)
    n.normalise(src, dst, info, SPEC, timeout=120, on_progress=seen.append)
    assert seen and seen[-1] == pytest.approx(1.0, abs=0.05) and seen == sorted(seen)
    found = streams(dst)
    found["source_seconds"] = info.duration
    return dst, found


def assert_web(path: Path, s: dict[str, Any], size: tuple[int, int], seconds: float) -> None:
    """Exact stream parameters; `seconds` is the nominal length of the generated source."""
    assert s["source_seconds"] == pytest.approx(seconds, abs=0.1)
    video, audio = s["video"], s["audio"]
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert video["r_frame_rate"] == "30/1" and video["avg_frame_rate"] == "30/1"
    assert video["has_b_frames"] == 0
    assert video["time_base"] == f"1/{SPEC.timescale}"
    assert (video["width"], video["height"]) == size
    assert not any("rotation" in d for d in video.get("side_data_list", []))
    assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", 48000, 2)
    frames = int(video["nb_frames"])
    assert abs(frames - s["source_seconds"] * 30) <= 1, (frames, s["source_seconds"])
    assert keyframes(path) == list(range(0, frames, SPEC.gop_frames))
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "faststart: moov first"


@pytest.mark.parametrize(("make", "size"), [
    (media_files.story_mp4, (320, 240)),
    (lambda p: media_files.story_mp4(p, size="1080x1920"), (720, 1280)),
    (media_files.landscape_mp4, (1280, 720)),
])
def test_h264_mp4(tmp_path: Path, make: Callable[[Path], Path], size: tuple[int, int]) -> None:
    """Portrait and landscape phone MP4s come out capped at 1280 on the long side."""
    path, s = render(tmp_path, make, "phone.mp4")
    assert_web(path, s, size, 2.0)


def test_hevc_mov_with_rotation(tmp_path: Path) -> None:
    """A 90 degree display matrix is applied: 640x360 stored becomes 360x640 shown."""
    src = media_files.rotated_hevc_mov(tmp_path / "iphone.mov")
    assert probe(src, timeout=30).video.rotation in (90, 270)  # type: ignore[union-attr]
    path, s = render(tmp_path, lambda p: src, "iphone.mov")
    assert_web(path, s, (360, 640), 2.0)


@pytest.mark.parametrize("make", [media_files.webm_without_duration,
                                  media_files.vp9_webm_without_duration])
def test_webm_without_duration(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path, s = render(tmp_path, make, "browser.webm")
    assert_web(path, s, (320, 240), 2.0)


def test_variable_frame_rate_becomes_constant(tmp_path: Path) -> None:
    src = media_files.vfr_mp4(tmp_path / "vfr.mp4")
    assert probe(src, timeout=30).video.variable_fps  # type: ignore[union-attr]
    path, s = render(tmp_path, lambda p: src, "vfr.mp4")
    assert_web(path, s, (320, 240), 3.0)


def test_no_audio_gets_a_silent_track(tmp_path: Path) -> None:
    path, s = render(tmp_path, lambda p: media_files.story_mp4(p, audio=False), "mute.mp4")
    assert_web(path, s, (320, 240), 2.0)
    assert float(s["audio"]["duration"]) == pytest.approx(2.0, abs=0.05)


def test_mono_44k_becomes_stereo_48k(tmp_path: Path) -> None:
    path, s = render(tmp_path, media_files.mono_441_mp4, "mono.mp4")
    assert_web(path, s, (320, 240), 2.0)


def test_hlg_is_tone_mapped_to_sdr(tmp_path: Path) -> None:
    src = media_files.hlg_10bit_mov(tmp_path / "hlg.mov")
    assert probe(src, timeout=30).video.hdr  # type: ignore[union-attr]
    path, s = render(tmp_path, lambda p: src, "hlg.mov")
    assert_web(path, s, (640, 360), 2.0)
    assert s["video"].get("color_transfer") in (None, "bt709")
    assert not probe(path, timeout=30).video.hdr  # type: ignore[union-attr]


@pytest.mark.parametrize("gain", [-40.0, 20.0])
def test_loudness_is_normalised(tmp_path: Path, gain: float) -> None:
    """Whisper-quiet and clipping sources both end at -16 LUFS, within 1 LU (ebur128)."""
    src = media_files.loudness_mp4(tmp_path / "noise.mp4", gain)
    before = integrated_lufs(src)
    assert before < -35 if gain < 0 else before > -10  # really far off to begin with
    path, _ = render(tmp_path, lambda p: src, "noise.mp4")
    assert integrated_lufs(path) == pytest.approx(-16.0, abs=1.0)


def test_poster_and_filmstrip_in_the_same_pass(tmp_path: Path) -> None:
    """The poster comes from a quarter of the way in (the source starts black), the
    filmstrip holds ten thumbnails in a row; both from the rendition's own pass."""
    src = tmp_path / "fade.mp4"
    media_files.ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1080x1920:r=30:d=4",
                       "-vf", "fade=in:st=0:d=0.5:c=black", "-c:v", "libx264", "-preset",
                       "ultrafast", str(src))
    stills = n.Stills(poster=tmp_path / "poster.jpg", filmstrip=tmp_path / "strip.jpg")
    n.normalise(src, tmp_path / "web.mp4", probe(src, timeout=30), SPEC, timeout=60,
                stills=stills)
    poster = streams(stills.poster)["video"]
    strip = streams(stills.filmstrip)["video"]
    assert (poster["width"], poster["height"]) == (720, 1280)
    assert (strip["height"], strip["width"]) == (90, 10 * 50)  # ten 50x90 thumbnails in a row
    mean = subprocess.run(["ffmpeg", "-v", "error", "-i", str(stills.poster), "-vf",
                           "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
                           "-f", "null", "-"], capture_output=True, text=True).stdout
    assert float(re.findall(r"YAVG=([\d.]+)", mean)[0]) > 40, "not a black frame"
    with pytest.raises(ValueError):
        n.Stills(poster=tmp_path / "a.jpg", filmstrip=tmp_path / "b.jpg", count=0)


def test_spec_refuses_odd_values() -> None:
    with pytest.raises(ValueError, match="even"):
        n.RenditionSpec(long_side=1279)
    with pytest.raises(ValueError, match="whole number of frames"):
        n.RenditionSpec(fps=25, gop_seconds=0.5)


def test_a_rendition_can_start_inside_the_source(tmp_path: Path) -> None:
    """The member's trim: from 2.5 s for 2 s of a red-blue-lime source gives a 2 s rendition
    whose first frame is blue and whose last is lime, still in the rendition's format."""
    src = media_files.colour_story_mp4(tmp_path / "colours.mp4")
    info = probe(src, timeout=60)
    kept = dataclasses.replace(info, duration=2.0)
    dst = tmp_path / "kept.mp4"
    n.normalise(src, dst, kept, SPEC, timeout=120, start=2.5)
    found = streams(dst)
    assert float(found["format"]["duration"]) == pytest.approx(2.0, abs=0.05)
    assert int(found["video"]["nb_frames"]) == 60
    assert keyframes(dst)[:2] == [0, SPEC.gop_frames]
    blue, lime = media_files.frame_rgb(dst, 0), media_files.frame_rgb(dst, 1.95)
    assert blue[2] > 200 and blue[0] < 40 and blue[1] < 40
    assert lime[1] > 200 and lime[0] < 40 and lime[2] < 40
    with pytest.raises(ValueError, match="starts at 0 s or later"):
        n.normalise(src, dst, kept, SPEC, timeout=120, start=-1)

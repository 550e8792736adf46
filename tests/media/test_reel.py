"""Reels from pieces: frame-exact joins, smart-rendered crossfades, one audio pass, framing
without black bars, repeatable renders, and user text drawn literally."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import ffmpeg
import pytest

from media import reel
from media.canvas import FPS, GOP, canvas
from media.lettering import Style, layout, write
from media.normalise import RenditionSpec, normalise
from media.piece import CardSpec, PieceSpec, render_card, render_piece
from media.probe import probe
from media.text import Caption, clean, overlay
from tests import media_files

CANVAS = canvas("9:16")
TIMEOUT = 300.0


def ffprobe(path: Path, *args: str) -> str:
    return subprocess.run(["ffprobe", "-v", "error", *args, str(path)], capture_output=True,
                          text=True, check=True).stdout


def stream_facts(path: Path) -> dict[str, dict[str, str]]:
    data = json.loads(ffprobe(path, "-count_packets", "-show_entries",
                              "stream=codec_type,nb_read_packets,duration", "-of", "json"))
    return {s["codec_type"]: s for s in data["streams"]}


def frame_md5s(path: Path) -> list[str]:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f",
                          "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines()
            if line and not line.startswith("#")]


def decode_errors(path: Path) -> str:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True).stderr


def integrated_lufs(path: Path) -> float:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a",
                          "-af", "ebur128", "-f", "null", "-"], capture_output=True, text=True)
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", out.stderr)[-1])


def luma(path: Path, at: float, crop: str) -> float:
    """Mean luma of a region (ffmpeg crop syntax) of the frame at `at` seconds."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{at}", "-i", str(path),
                          "-frames:v", "1", "-vf", f"crop={crop},format=gray,scale=1:1",
                          "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    return float(out[0])


@pytest.fixture(scope="module")
def renditions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three clips as ingest leaves them: portrait, landscape, portrait with silence."""
    folder = tmp_path_factory.mktemp("reel-sources")
    sources = [media_files.story_mp4(folder / "a.mp4", 3, "360x640"),
               media_files.landscape_mp4(folder / "b.mp4", 3),
               media_files.story_mp4(folder / "c.mp4", 3, "360x640", audio=False)]
    out = []
    for src in sources:
        web = src.with_suffix(".web.mp4")
        normalise(src, web, probe(src, timeout=60), RenditionSpec(), timeout=TIMEOUT)
        out.append(web)
    return out


@pytest.fixture(scope="module")
def parts(renditions: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[reel.Part]:
    folder = tmp_path_factory.mktemp("pieces")
    made = []
    lengths = [70, 75, 64]  # not multiples of the GOP: windows start mid-piece
    for i, (src, frames) in enumerate(zip(renditions, lengths, strict=True)):
        info = probe(src, timeout=60)
        assert info.video is not None
        dst = folder / f"piece-{i}.mov"
        render_piece(src, dst, PieceSpec(CANVAS, 5, frames, Caption(f"Member {i}", "Loved it")),
                     info.video.display_size, has_audio=info.audio is not None,
                     timeout=TIMEOUT)
        made.append(reel.Part(dst, frames))
    return made


def test_plan_hard_cut_is_whole_pieces() -> None:
    parts = [reel.Part(Path(f"/p{i}"), n) for i, n in enumerate((70, 75, 64))]
    assert reel.plan(parts, 0) == [reel.Copy(0, 0, 70), reel.Copy(1, 0, 75),
                                   reel.Copy(2, 0, 64)]
    assert reel.total_frames(parts, 0) == 209


def test_plan_crossfade_reencodes_only_windows_on_gop_bounds() -> None:
    parts = [reel.Part(Path(f"/p{i}"), n) for i, n in enumerate((70, 75, 64))]
    segments = reel.plan(parts, 15)
    assert segments == [reel.Copy(0, 0, 45), reel.Window(0, 45, 15, 15),
                        reel.Copy(1, 15, 60), reel.Window(1, 60, 15, 15),
                        reel.Copy(2, 15, 64)]
    for seg in segments:
        if isinstance(seg, reel.Copy) and seg.index < 2:
            assert seg.start % GOP == 0 and seg.end % GOP == 0
    covered = sum(s.end - s.start if isinstance(s, reel.Copy) else s.frames(parts)
                  for s in segments)
    assert covered == reel.total_frames(parts, 15) == 209 - 30


def test_plan_refuses_pieces_too_short_for_the_fade() -> None:
    parts = [reel.Part(Path("/a"), 60), reel.Part(Path("/b"), 40), reel.Part(Path("/c"), 60)]
    with pytest.raises(ValueError, match="too short"):
        reel.plan(parts, 30)


def test_piece_is_exact_and_cut_friendly(parts: list[reel.Part]) -> None:
    """Exact frames, PCM samples to match, a keyframe every GOP, the canvas size."""
    facts = stream_facts(parts[0].path)
    assert int(facts["video"]["nb_read_packets"]) == 70
    assert float(facts["audio"]["duration"]) == pytest.approx(70 / FPS, abs=1e-3)
    keys = ffprobe(parts[0].path, "-select_streams", "v", "-show_entries",
                   "packet=flags", "-of", "csv=p=0").split()
    assert [i for i, flags in enumerate(keys) if "K" in flags] == list(range(0, 70, GOP))
    info = probe(parts[0].path, timeout=60)
    assert info.video is not None and (info.video.width, info.video.height) == (720, 1280)


def test_landscape_clip_is_framed_over_its_blurred_self(parts: list[reel.Part]) -> None:
    """No black bars: above and below the picture is a blurred copy of it (testsrc2 is
    bright), not black."""
    assert luma(parts[1].path, 1.0, "720:200:0:0") > 40
    assert luma(parts[1].path, 1.0, "720:200:0:1080") > 40


@pytest.mark.parametrize("overlap", [0, 15])
def test_reel_is_frame_exact_in_sync_and_normalised(parts: list[reel.Part], tmp_path: Path,
                                                     overlap: int) -> None:
    dst = tmp_path / "reel.mp4"
    seen: list[float] = []
    frames = reel.build(parts, reel.AudioPlan(overlap=overlap), dst, tmp_path,
                        timeout=TIMEOUT, on_progress=seen.append)
    facts = stream_facts(dst)
    assert frames == reel.total_frames(parts, overlap)
    assert int(facts["video"]["nb_read_packets"]) == frames
    drift = abs(float(facts["video"]["duration"]) - float(facts["audio"]["duration"]))
    assert drift <= 1 / FPS
    assert decode_errors(dst) == ""
    assert integrated_lufs(dst) == pytest.approx(-16.0, abs=1.0)
    assert seen and seen[-1] == 1.0


def test_crossfade_reel_copies_untouched_frames(parts: list[reel.Part], tmp_path: Path) -> None:
    """Outside the windows the reel's frames are the pieces' own, bit for bit (copied)."""
    dst = tmp_path / "reel.mp4"
    reel.build(parts, reel.AudioPlan(overlap=15), dst, tmp_path, timeout=TIMEOUT)
    made, first, second = frame_md5s(dst), frame_md5s(parts[0].path), frame_md5s(parts[1].path)
    # piece 0 copied up to its window (frames 45-70 of it fading into 0-15 of piece 1:
    # 25 frames), then piece 1 copied from 15 to its next window at 60
    assert made[:45] == first[:45]
    assert made[70:115] == second[15:60]
    assert made[60:70] != first[60:70]  # the fade itself is neither piece


def test_same_manifest_same_frames(renditions: list[Path], tmp_path: Path) -> None:
    """Rendering the same pieces again gives identical frames."""
    def render(folder: Path) -> list[str]:
        folder.mkdir()
        made = []
        for i, src in enumerate(renditions[:2]):
            info = probe(src, timeout=60)
            assert info.video is not None
            dst = folder / f"p{i}.mov"
            render_piece(src, dst, PieceSpec(CANVAS, 0, 60, Caption("Ana", "Yes")),
                         info.video.display_size, has_audio=True, timeout=TIMEOUT)
            made.append(reel.Part(dst, 60))
        out = folder / "reel.mp4"
        reel.build(made, reel.AudioPlan(overlap=8), out, folder, timeout=TIMEOUT)
        return frame_md5s(out)

    assert render(tmp_path / "one") == render(tmp_path / "two")


def test_music_ducks_under_speech(tmp_path: Path) -> None:
    """Sidechain compression: the music is quieter while someone speaks."""
    speech = tmp_path / "speech.mov"
    media_files.ffmpeg("-f", "lavfi", "-i", "testsrc2=s=360x640:r=30:d=4", "-f", "lavfi", "-i",
                       "sine=f=300:d=4,volume=enable='gt(t,2)':volume=0", "-c:v", "libx264",
                       "-preset", "ultrafast", "-c:a", "pcm_s16le", "-ar", "48000", "-ac", "2",
                       "-shortest", str(speech))
    music = tmp_path / "music.wav"
    media_files.ffmpeg("-f", "lavfi", "-i", "anoisesrc=c=pink:d=2:a=0.5", "-ar", "48000",
                       str(music))
    plan = reel.AudioPlan(music=reel.Music(music))
    level = reel.mix([reel.Part(speech, 120)], plan, tmp_path / "mix.wav", timeout=TIMEOUT)
    assert level.lufs > -70

    def rms(start: float) -> float:
        out = subprocess.run(["ffmpeg", "-v", "info", "-i", str(tmp_path / "mix.wav"), "-af",
                              f"atrim={start}:{start + 0.8},highpass=f=2000,astats",
                              "-f", "null", "-"], capture_output=True, text=True).stderr
        return float(re.findall(r"RMS level dB:\s+(-?[\d.]+)", out)[-1])

    # above 2 kHz only the noise (music) is heard: quieter during speech (0.6-1.4 s) than
    # after it (2.6-3.4 s, the music loops and is no longer ducked)
    assert rms(0.6) < rms(2.6) - 6


HOSTILE = [
    "Ana O'Neil: \"50%\" off",
    "100%{pts} %{localtime} %%",
    "back\\slash \\n \\' [bracket] {brace} ;semi, comma=equals",
    "Emoji 🎉👍🏽 and marks ✓ ★",
    "مرحبا بالعالم · שלום עולם",
    ":colon:\\:escaped\\\\",
]


def drawn(text: str, folder: Path) -> list[str]:
    """Raw (unencoded) frames of `text` drawn by the product's lettering at 0 and 1 s."""
    folder.mkdir()
    style = Style(size=24)
    write(folder / "t.png", layout(clean(text), 1900, style), style)
    video = overlay(ffmpeg.input("color=c=black:s=1920x120:r=30:d=1.1", f="lavfi")["v"],
                    folder / "t.png", x="10", y="40")
    out = ffmpeg.output(video.filter("select", "eq(n,0)+eq(n,30)"), "-", f="framemd5",
                        vcodec="rawvideo", fps_mode="passthrough")
    result = subprocess.run([*out.compile(), "-v", "error"], capture_output=True, text=True,
                            check=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in result.splitlines()
            if line and not line.startswith("#")]


@pytest.mark.parametrize("text", HOSTILE)
def test_user_text_is_drawn_literally(text: str, tmp_path: Path) -> None:
    """Quotes, colons, percent signs, backslashes, brackets, emoji and right-to-left text are
    drawn whole (dropping the last character changes the picture) and nothing is expanded
    (a %{pts} would change from frame to frame)."""
    first, later = drawn(text, tmp_path / "whole")
    assert first == later, "the text changed over time: something was expanded"
    assert first != drawn(text[:-1], tmp_path / "shorter")[0]
    assert first != drawn("", tmp_path / "empty")[0]


@pytest.mark.parametrize("text", HOSTILE)
def test_title_card_renders_any_text(text: str, tmp_path: Path) -> None:
    """The card renders; its lines hold the cleaned text, only wrapped."""
    render_card(tmp_path / "card.mov", CardSpec(CANVAS, text), timeout=TIMEOUT)
    assert int(stream_facts(tmp_path / "card.mov")["video"]["nb_read_packets"]) == 60
    assert (tmp_path / "card.mov.text" / "title.png").is_file()
    lines = layout(clean(text), int(CANVAS.width * 0.8), Style(size=CANVAS.width // 12), 6)
    assert "".join("".join(lines).split()) == "".join(clean(text).split())


def test_control_characters_never_reach_the_picture() -> None:
    assert clean("a\x00b\x1b[31mc\u202ed\ttab\nnew") == "ab[31mcd tab new"
    assert len(clean("x" * 500)) == 120


def test_reel_frames_are_a_stable_digest(parts: list[reel.Part], tmp_path: Path) -> None:
    """A hard-cut reel's video is exactly its pieces' video (stream copy, no re-encode)."""
    dst = tmp_path / "reel.mp4"
    reel.build(parts, reel.AudioPlan(), dst, tmp_path, timeout=TIMEOUT)
    joined = hashlib.sha256("".join(frame_md5s(dst)).encode()).hexdigest()
    pieces = hashlib.sha256("".join(m for p in parts for m in frame_md5s(p.path))
                            .encode()).hexdigest()
    assert joined == pieces

"""AAC on two cores: a soundtrack encoded in parts and spliced decodes like one encode,
with nothing heard at the cuts."""

from __future__ import annotations

import math
import subprocess
from array import array
from pathlib import Path

import pytest

from media import aac
from media.run import MediaError
from tests import media_files

OPTIONS = {"acodec": "aac", "ar": 48000, "ac": 2, "b:a": "160k", "aac_coder": "fast"}


def pcm(path: Path, *args: str) -> array[float]:
    raw = subprocess.run(["ffmpeg", "-v", "error", *args, "-i", str(path), "-f", "f32le",
                          "-ac", "2", "-ar", "48000", "-"], capture_output=True,
                         check=True).stdout
    return array("f", raw)


def snr_db(reference: array[float], decoded: array[float], start: int, end: int) -> float:
    signal = sum(x * x for x in reference[start:end])
    noise = sum((a - b) ** 2 for a, b in zip(reference[start:end], decoded[start:end],
                                             strict=True))
    return 10 * math.log10(signal / max(noise, 1e-12))


@pytest.fixture(scope="module")
def soundtrack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Music-like: noise, tones and sharp transients (what shows a splice click)."""
    path = tmp_path_factory.mktemp("aac") / "track.wav"
    media_files.ffmpeg("-f", "lavfi", "-i", "anoisesrc=c=pink:d=12:a=0.1:r=48000",
                       "-f", "lavfi", "-i", "sine=f=440:d=12:r=48000",
                       "-f", "lavfi", "-i", "aevalsrc='0.5*sin(2*PI*90*t)*lt(mod(t,0.37),0.03)':"
                       "d=12:s=48000",
                       "-filter_complex", "[0][1][2]amix=inputs=3:normalize=0,"
                       "aformat=channel_layouts=stereo", "-c:a", "pcm_f32le", str(path))
    return path


def test_parts_cover_the_stream_without_overlap() -> None:
    runs = aac.parts(48000 * 140, 2)
    assert runs[0].first == 0 and runs[-1].last is None
    assert runs[1].first == runs[0].last + 1  # type: ignore[operator]
    assert aac.parts(48000, 2) == [aac.Part(0, None)]  # too short to split


def test_adts_parser_refuses_garbage() -> None:
    with pytest.raises(MediaError, match="not an ADTS frame"):
        aac.adts_frames(b"\x00" * 20)
    with pytest.raises(MediaError, match="truncated"):
        aac.adts_frames(bytes([0xFF, 0xF1, 0x50, 0x80, 0xFF, 0xE0, 0x00]))


@pytest.mark.parametrize("jobs", [2, 3])
def test_spliced_encode_decodes_like_one_encode(soundtrack: Path, tmp_path: Path,
                                                jobs: int) -> None:
    samples = 12 * 48000
    single, spliced = tmp_path / "single.aac", tmp_path / "spliced.aac"
    one = aac.encode(soundtrack, single, samples=samples, filters=[], options=OPTIONS,
                     timeout=60, jobs=1)
    many = aac.encode(soundtrack, spliced, samples=samples, filters=[], options=OPTIONS,
                      timeout=60, jobs=jobs)
    assert many == one  # the same packet grid
    reference = pcm(soundtrack)
    # skip the priming packet's output (1024 stereo samples) to line up with the source
    a, b = pcm(single)[2048:], pcm(spliced)[2048:]
    assert len(b) == len(a) >= len(reference)
    overall = snr_db(reference, a, 0, len(reference))
    assert overall > 15
    for part in aac.parts(samples, jobs)[1:]:
        cut = (part.first - 1) * aac.FRAME * 2  # interleaved stereo
        around = (cut - 4096, cut + 4096)
        assert snr_db(reference, b, *around) > snr_db(reference, a, *around) - 3, \
            f"the cut at sample {cut // 2} is heard"

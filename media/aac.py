"""AAC encoding of one soundtrack on several cores, spliced into one continuous stream.

ffmpeg's AAC encoder is single-threaded and is the slowest step of a reel's audio pass. The
soundtrack is cut at AAC frame boundaries (1024 samples); each part is encoded by its own
ffmpeg with some signal before it (pre-roll, so the encoder's state and the MDCT frames at
the cut are those a single encode would make) and after it (post-roll, so the last kept
frame's window sees real signal, not padding). The kept packets are on one grid of 1024
samples, so the decoder's overlap-add runs across the cut as if one encoder had made them.
The spliced ADTS stream keeps the encoder's priming packet at its start; muxing declares
that priming (an edit list), so audio starts exactly with the video.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from media.run import PROTOCOLS, MediaError, command, local_input, run

FRAME = 1024        # samples per AAC frame
PRIMING = FRAME     # ffmpeg's encoder delay: packet k decodes to input [(k - 1) * 1024, k * 1024)
PRE_ROLL = 8        # frames of signal before a part's first kept frame
POST_ROLL = 2       # frames after its last


@dataclass(frozen=True)
class Part:
    first: int        # first packet index kept (absolute; packet 0 is the priming packet)
    last: int | None  # last packet index kept, inclusive; None: to the end of the stream


def parts(samples: int, count: int) -> list[Part]:
    """Split the packets of a `samples`-long encode into `count` runs, cut on frame bounds;
    parts shorter than a few pre-rolls aren't worth an encoder of their own."""
    if count < 1:
        raise ValueError("at least one part")
    frames = samples // FRAME
    count = max(1, min(count, frames // (8 * (PRE_ROLL + POST_ROLL))))
    bounds = [round(i * frames / count) for i in range(count)]
    return [Part(bounds[i], bounds[i + 1] - 1 if i + 1 < count else None)
            for i in range(count)]


def adts_frames(data: bytes) -> list[bytes]:
    """Split an ADTS stream into its frames (each with its header)."""
    frames, pos = [], 0
    while pos + 7 <= len(data):
        if data[pos] != 0xFF or data[pos + 1] & 0xF6 != 0xF0:
            raise MediaError(f"not an ADTS frame at byte {pos}")
        length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        if length < 7 or pos + length > len(data):
            raise MediaError(f"truncated ADTS frame at byte {pos}")
        frames.append(data[pos:pos + length])
        pos += length
    if pos != len(data):
        raise MediaError("trailing bytes after the last ADTS frame")
    return frames


def _encode_part(source: Any, part: Part, total: int, dst: Path, options: dict[str, Any],
                 timeout: float) -> list[bytes]:
    """Packets `part.first..part.last` of what one encoder of the whole would make."""
    # the input sample where packet p's decoded output starts is (p - 1) * FRAME
    start = max((part.first - 1 - PRE_ROLL) * FRAME, 0)
    end = total if part.last is None else min((part.last + POST_ROLL) * FRAME, total)
    audio = source.filter("atrim", start_sample=start, end_sample=end).filter(
        "asetpts", "PTS-STARTPTS")
    out = ffmpeg.output(audio, str(dst), f="adts", **options)
    run(command(out, "-y"), timeout=timeout, keep_stdout=False)
    packets = adts_frames(dst.read_bytes())
    # this encode's packet 0 is its own priming; its packet j is the whole's packet
    # j + start / FRAME (start is on the frame grid)
    offset = start // FRAME
    if part.last is None:
        return packets[part.first - offset:]
    wanted = packets[part.first - offset: part.last - offset + 1]
    if len(wanted) != part.last - part.first + 1:
        raise MediaError(f"the encoder gave {len(packets)} packets for part {part}")
    return wanted


def encode(source: Path, dst: Path, *, samples: int, filters: Sequence[tuple[str, dict[str, Any]]],
           options: dict[str, Any], timeout: float, jobs: int = 2) -> int:
    """Encode `samples` samples of the WAV `source` (after `filters`) to the ADTS file `dst`
    with `jobs` encoders side by side. Returns the number of packets."""
    runs = parts(samples, jobs)

    def one(index: int) -> list[bytes]:
        audio = ffmpeg.input(local_input(source), protocol_whitelist=PROTOCOLS,
                             format_whitelist="wav")["a:0"]
        for name, kwargs in filters:
            audio = audio.filter(name, **kwargs)
        return _encode_part(audio, runs[index], samples,
                            dst.with_name(f"{dst.name}.part{index}"), options, timeout)

    with ThreadPoolExecutor(len(runs)) as pool:
        chunks = list(pool.map(one, range(len(runs))))
    with dst.open("wb") as fh:
        for chunk in chunks:
            fh.writelines(chunk)
    for index in range(len(runs)):
        dst.with_name(f"{dst.name}.part{index}").unlink(missing_ok=True)
    return sum(len(c) for c in chunks)

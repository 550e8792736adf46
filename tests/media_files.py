"""Test media, generated at test time with ffmpeg's lavfi sources (nothing binary is committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True, timeout=120)


def ffmpeg_out(path: Path, *args: str) -> Path:
    ffmpeg(*args, str(path))
    return path


def story_mp4(path: Path, seconds: float = 2, size: str = "320x240", audio: bool = True) -> Path:
    """H.264 + AAC, like a phone's MP4."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}"]
    ffmpeg(*inputs, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           *(["-c:a", "aac"] if audio else []), "-shortest", str(path))
    return path


def webm_without_duration(path: Path, seconds: float = 2) -> Path:
    """VP8 WebM written to a pipe, so its header carries no duration (like MediaRecorder)."""
    with path.open("wb") as fh:
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                        f"testsrc2=s=320x240:r=30:d={seconds}", "-f", "lavfi", "-i",
                        f"sine=d={seconds}", "-c:v", "libvpx", "-deadline", "realtime",
                        "-c:a", "libopus", "-shortest", "-f", "webm", "pipe:1"],
                       stdout=fh, check=True, timeout=120)
    return path


def audio_only_mp4(path: Path, seconds: float = 2) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=d={seconds}", "-c:a", "aac", "-f", "mp4", str(path))
    return path


def big_mp4(path: Path, megabytes: int) -> Path:
    """A valid MP4 head followed by filler, for upload sizes (not for probing)."""
    small = story_mp4(path.with_suffix(".head.mp4"), 1)
    with path.open("wb") as out:
        out.write(small.read_bytes())
        block = bytes(range(256)) * 4096
        while out.tell() < megabytes * 1024 * 1024:
            out.write(block)
    return path


def landscape_mp4(path: Path, seconds: float = 2) -> Path:
    return story_mp4(path, seconds, size="1920x1080")


def rotated_hevc_mov(path: Path, seconds: float = 2) -> Path:
    """HEVC in a MOV with a 90 degree display matrix, like an iPhone held upright."""
    plain = path.with_suffix(".unrotated.mov")
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=640x360:r=30:d={seconds}", "-f", "lavfi", "-i",
           f"sine=d={seconds}", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
           "log-level=error", "-tag:v", "hvc1", "-c:a", "aac", "-shortest", "-f", "mov",
           str(plain))
    # ffmpeg 5.1 writes the display matrix only when remuxing
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", "-f", "mov", str(path))
    return path


def vp9_webm_without_duration(path: Path, seconds: float = 2) -> Path:
    with path.open("wb") as fh:
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                        f"testsrc2=s=320x240:r=30:d={seconds}", "-c:v", "libvpx-vp9",
                        "-deadline", "realtime", "-cpu-used", "8", "-f", "webm", "pipe:1"],
                       stdout=fh, check=True, timeout=120)
    return path


def vfr_mp4(path: Path, seconds: float = 3) -> Path:
    """Variable frame rate: 30 fps for the first second, then every third frame."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r=30:d={seconds}",
           "-vf", "select='lt(n\\,30)+not(mod(n\\,3))'", "-vsync", "vfr",
           "-c:v", "libx264", "-preset", "ultrafast", str(path))
    return path


def mono_441_mp4(path: Path, seconds: float = 2) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={seconds}", "-f", "lavfi", "-i",
           f"sine=f=500:r=44100:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", "-ac", "1", "-ar", "44100", "-shortest", str(path))
    return path


def hlg_10bit_mov(path: Path, seconds: float = 2) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=640x360:r=30:d={seconds}", "-c:v", "libx265",
           "-preset", "ultrafast", "-x265-params", "log-level=error", "-pix_fmt",
           "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
           "-colorspace", "bt2020nc", "-tag:v", "hvc1", "-f", "mov", str(path))
    return path


def loudness_mp4(path: Path, gain_db: float, seconds: float = 4) -> Path:
    """Pink noise at a given gain: -40 dB is whisper-quiet, +20 dB clips hard at 0 dBFS."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r=30:d={seconds}", "-f", "lavfi", "-i",
           f"anoisesrc=c=pink:r=48000:d={seconds},volume={gain_db}dB,alimiter=limit=1",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "192k",
           "-shortest", str(path))
    return path


def phone_60fps_mp4(path: Path, seconds: float = 2, size: str = "1280x720") -> Path:
    """H.264 High with B-frames at 60 fps, as a phone records fast motion (heavy-plan input)."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size}:r=60:d={seconds}", "-f", "lavfi", "-i",
           f"sine=f=440:d={seconds}", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path))
    return path


def colour_story_mp4(path: Path, colours: tuple[str, ...] = ("red", "blue", "lime"),
                     seconds_each: float = 2, size: str = "320x240") -> Path:
    """H.264 + AAC, one plain colour after another (`seconds_each` long): which part of it a
    rendition shows can be read off its pixels."""
    inputs: list[str] = []
    for colour in colours:
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:s={size}:r=30:d={seconds_each}"]
    total = seconds_each * len(colours)
    inputs += ["-f", "lavfi", "-i", f"sine=f=440:d={total}"]
    joined = "".join(f"[{n}:v]" for n in range(len(colours)))
    ffmpeg(*inputs, "-filter_complex", f"{joined}concat=n={len(colours)}:v=1:a=0[v]",
           "-map", "[v]", "-map", f"{len(colours)}:a", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def frame_rgb(path: Path, at: float = 0, x: float = 0.5, y: float = 0.5) -> tuple[int, int, int]:
    """The colour of one pixel (at the fractions `x`, `y` of the frame) of the frame at `at` s."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{at:.3f}", "-i", str(path), "-frames:v", "1",
         "-vf", f"crop=2:2:(iw-2)*{x}:(ih-2)*{y},scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-"], check=True, capture_output=True, timeout=60).stdout
    return out[0], out[1], out[2]


def picture(path: Path, size: str = "1600x800", codec: str = "png") -> Path:
    """A still picture (png, mjpeg or libwebp) of ffmpeg's test pattern."""
    return ffmpeg_out(path, "-f", "lavfi", "-i", f"testsrc2=s={size}:d=1", "-frames:v", "1",
                      "-c:v", codec, "-f", "image2")

"""A brand's logo is untrusted media: only PNG, JPEG and WebP (by their first bytes), their
frame size read before decoding, and what comes out is always our own PNG of bounded size."""

from __future__ import annotations

import json
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from media.logo import make_logo, picture_type
from media.run import MediaError
from tests import media_files


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize(("codec", "name"), [("png", "logo.png"), ("mjpeg", "logo.jpg"),
                                             ("libwebp", "logo.webp")])
def test_each_picture_type_becomes_a_bounded_png(tmp_path: Path, codec: str, name: str) -> None:
    """A 1600x800 picture of each type comes out as a 512x256 PNG that ffprobe reads."""
    src = media_files.picture(tmp_path / name, codec=codec)
    out = tmp_path / "out.png"
    assert make_logo(src, out, max_side=512, timeout=20) == (512, 256)
    assert png_size(out) == (512, 256)
    probed = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
        check=True, capture_output=True, text=True).stdout)["streams"][0]
    assert probed["codec_name"] == "png" and probed["width"] == 512


def test_small_pictures_are_not_enlarged(tmp_path: Path) -> None:
    src = media_files.picture(tmp_path / "small.png", size="120x60")
    assert make_logo(src, tmp_path / "out.png", max_side=512, timeout=20) == (120, 60)


def test_the_type_is_read_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    """A JPEG named .png is read as the JPEG it is; an SVG or a text file named .png is not a
    picture we take."""
    jpeg = media_files.picture(tmp_path / "photo.jpg", codec="mjpeg")
    renamed = tmp_path / "photo.png"
    renamed.write_bytes(jpeg.read_bytes())
    assert make_logo(renamed, tmp_path / "a.png", timeout=20) == (512, 256)
    svg = tmp_path / "logo.png"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    with pytest.raises(MediaError, match="not a PNG"):
        make_logo(svg, tmp_path / "b.png", timeout=20)
    assert picture_type(b"GIF89a......") is None
    assert picture_type(b"RIFF\x00\x00\x00\x00WEBP") == "webp_pipe"


def test_a_picture_too_large_to_decode_is_refused_from_its_header(tmp_path: Path) -> None:
    """A PNG whose header claims 30000x30000 pixels (a decompression bomb) is refused, and
    fast: no frame of that size is ever allocated."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))
    started = time.monotonic()
    with pytest.raises(MediaError):
        make_logo(bomb, tmp_path / "out.png", timeout=20)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "out.png").exists()

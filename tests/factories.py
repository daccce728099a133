"""Builders for test photos: good ones (deterministic per seed) and the broken ones people send."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import ExifTags, Image

from bot.photos import draw_sample_scene


def make_jpeg(
    width: int = 640,
    height: int = 480,
    *,
    seed: int = 0,
    text: str | None = None,
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
    quality: int = 85,
) -> bytes:
    """A JPEG street scene; different seeds look (and perceptually hash) different.

    `gps` is (latitude, longitude) in decimal degrees, written as EXIF DMS rationals with
    N/S/E/W references the way phone cameras do; `orientation` is the EXIF Orientation tag.
    """
    image = draw_sample_scene(seed, text, width=width, height=height)
    return _save(image, "JPEG", exif=_exif(gps=gps, orientation=orientation), quality=quality)


def make_png(
    width: int = 640,
    height: int = 480,
    *,
    seed: int = 0,
    text: str | None = None,
    gps: tuple[float, float] | None = None,
    mode: str = "RGB",
) -> bytes:
    """Like `make_jpeg`, as PNG (lossless, so pixels can be compared exactly)."""
    image = draw_sample_scene(seed, text, width=width, height=height)
    if mode != "RGB":
        image = image.convert(mode)
    return _save(image, "PNG", exif=_exif(gps=gps, orientation=None))


def corrupt_jpeg(*, seed: int = 0) -> bytes:
    """A real JPEG cut off in the middle, like an interrupted upload."""
    data = make_jpeg(seed=seed)
    return data[: len(data) // 2]


def big_blob(n_bytes: int) -> bytes:
    """`n_bytes` of zeros: cheap to build, for size limits."""
    return bytes(n_bytes)


def fake_pdf() -> bytes:
    """The start of a PDF document, as sent by someone attaching a scan."""
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that *declares* `width` x `height` (a decompression bomb when huge).

    Pillow judges the size from the header, so the body need not be real.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _exif(*, gps: tuple[float, float] | None, orientation: int | None) -> bytes | None:
    if gps is None and orientation is None:
        return None
    exif = Image.Exif()
    # Real cameras always write these; Pillow also skips an EXIF block with an empty base IFD.
    exif[ExifTags.Base.Make] = "GridbotTestCam"
    exif[ExifTags.Base.Model] = "Patrol 1"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        lat, lon = gps
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(
            {
                ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
                ExifTags.GPS.GPSLatitude: _dms(abs(lat)),
                ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
                ExifTags.GPS.GPSLongitude: _dms(abs(lon)),
            }
        )
    return exif.tobytes()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = round((minutes_full - minutes) * 60, 4)
    return (float(degrees), float(minutes), seconds)


def _save(image: Image.Image, fmt: str, *, exif: bytes | None, **options: object) -> bytes:
    out = io.BytesIO()
    if exif is not None:
        options["exif"] = exif
    image.save(out, fmt, **options)
    return out.getvalue()

"""Builders for test photos: good ones (deterministic per seed) and the broken ones people send."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import ExifTags, Image, ImageDraw, ImageEnhance, ImageFilter

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


# --- scenes photographed more than once (the dedup evaluation set) ----------------------


def draw_problem_scene(
    problem_seed: int, *, place_seed: int | None = None, width: int = 400, height: int = 300
) -> Image.Image:
    """A problem at a place: the place's street scene with the problem filling the foreground.

    Captains frame the problem, not the street, so two problems at one place (`place_seed`)
    share only the background; `problem_seed` alone decides what is broken and where.
    """
    rng = random.Random(f"problem-{problem_seed}")
    image = draw_sample_scene(
        problem_seed if place_seed is None else place_seed, width=width, height=height
    )
    draw = ImageDraw.Draw(image)
    shape = rng.choice(("heap", "puddle", "pole", "box"))
    cx, cy = rng.randint(width // 5, width * 4 // 5), rng.randint(height // 2, height * 5 // 6)
    rx, ry = rng.randint(width // 6, width // 3), rng.randint(height // 8, height // 4)
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    if shape == "pole":  # a lamp post or a sign: tall and thin, reaching into the sky
        draw.rectangle([cx - width // 30, cy - height * 3 // 4, cx + width // 30, cy], fill=colour)
        draw.ellipse([cx - rx // 2, cy - height * 3 // 4 - ry // 2, cx + rx // 2,
                      cy - height * 3 // 4 + ry // 2], fill=colour)  # fmt: skip
    elif shape == "box":  # a bin, a broken bench, a junction box
        draw.rectangle([cx - rx, cy - 2 * ry, cx + rx, cy], fill=colour)
    else:
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=colour)
    # Some texture inside the problem, so it is not one flat patch.
    for _ in range(rng.randint(3, 8)):
        x, y = cx + rng.randint(-rx, rx), cy - rng.randint(0, ry)
        size = rng.randint(4, max(5, rx // 3))
        shade = tuple(rng.randint(0, 255) for _ in range(3))
        draw.rectangle([x, y, x + size, y + size // 2], fill=shade)
    return image


def photograph(scene: Image.Image, *, seed: int, how: str = "another angle") -> bytes:
    """A captain's JPEG of `scene`, as Telegram delivers it.

    `how`: "another angle" (a few per cent of crop, a small tilt and perspective, other
    light, size and JPEG quality — what two people standing near each other get),
    "close-up" (only the part around the problem, much enlarged), "at night" (dark, bluish,
    a flash hot spot and sensor noise), "recompressed" (the same picture re-encoded).
    """
    rng = random.Random(f"{how}-{seed}")
    width, height = scene.size
    image = scene
    if how == "another angle":
        # Another phone: its own resolution (scaled first, which also keeps this cheap)...
        scale = rng.uniform(0.6, 1.0)
        image = image.resize((round(width * scale), round(height * scale)))
        # ...held a little differently: tilted, framed and pointed otherwise...
        image = image.rotate(
            rng.uniform(-3, 3), resample=Image.Resampling.BILINEAR, fillcolor=(90, 90, 90)
        )
        image = _crop_share(image, rng.uniform(0.03, 0.10), rng)
        image = _tilt(image, rng.uniform(0.0, 0.03), rng)
        # ...in other light, and a little out of focus.
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.0)))
    elif how == "close-up":
        share = rng.uniform(0.35, 0.5)
        left = rng.uniform(0, 1 - share) * width
        top = rng.uniform(0.4, 1 - share) * height
        image = image.crop((round(left), round(top), round(left + share * width),
                            round(top + share * height))).resize((width, height))  # fmt: skip
    elif how == "at night":
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.25, 0.4))
        tint = Image.new("RGB", image.size, (20, 30, rng.randint(70, 110)))
        image = Image.blend(image, tint, 0.35)
        # The flash lights the middle and leaves the edges black.
        glow = Image.radial_gradient("L").resize(image.size).point(lambda v: 255 - v)
        image = Image.composite(ImageEnhance.Brightness(image).enhance(3.0), image, glow)
        noise = Image.effect_noise(image.size, rng.uniform(20, 40)).convert("RGB")
        image = Image.blend(image, noise, 0.15)
        image = _crop_share(image, rng.uniform(0.03, 0.10), rng)
    elif how != "recompressed":
        raise ValueError(f"unknown way to photograph: {how!r}")
    return _save(image.convert("RGB"), "JPEG", exif=None, quality=rng.randint(65, 90))


def _crop_share(image: Image.Image, share: float, rng: random.Random) -> Image.Image:
    width, height = image.size
    dx, dy = rng.uniform(0, share), rng.uniform(0, share)
    box = (width * dx, height * dy, width * (1 - share + dx), height * (1 - share + dy))
    return image.crop(tuple(round(v) for v in box))


def _tilt(image: Image.Image, amount: float, rng: random.Random) -> Image.Image:
    """A small perspective change: each corner moves by up to `amount` of the frame."""
    width, height = image.size

    def jitter() -> float:
        return rng.uniform(-amount, amount)

    quad = (
        width * jitter(), height * jitter(),
        width * jitter(), height * (1 + jitter()),
        width * (1 + jitter()), height * (1 + jitter()),
        width * (1 + jitter()), height * jitter(),
    )  # fmt: skip
    return image.transform(image.size, Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)

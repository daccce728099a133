"""Photos from building captains: checking what arrived, keeping it by content, sharing it safely.

Plain Python on Pillow and imagehash; no Telegram here. Every refusal is a typed `PhotoError`
whose `reason` the bot turns into a translated answer (`error.photo.<reason>`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import math
import os
import random
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import imagehash
from PIL import ExifTags, Image, ImageDraw, ImageFont, ImageOps

log = logging.getLogger(__name__)

# Telegram lets a bot download at most 20 MB through getFile; anything bigger never reaches us
# in production, but the emulator, the CLI and hostile tests can still hand us more.
MAX_PHOTO_BYTES = 20 * 1024 * 1024
# 50 megapixels: a 48 MP phone photo sent as a document still passes, while decoding stays
# around 150 MB of RGB. Stricter than Pillow's own guard (~89 MP), which we keep as well.
MAX_PHOTO_PIXELS = 50_000_000

# Decoders we let loose on strangers' bytes. Each extra format is extra attack surface; these
# are what phones and Telegram actually send. (Pillow's JPEG opener also yields "MPO", how it
# reads many camera JPEGs.)
_ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
_EXT_BY_FORMAT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}
_STORABLE_EXTS = frozenset(_EXT_BY_FORMAT.values())
# Signatures of image files, to tell "a damaged photo" from "not a photo at all".
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM")
# The perceptual hash looks at a 32x32 thumbnail, so a JPEG is decoded at the smallest scale
# libjpeg offers that keeps both sides at 128 px or more (1/4 or 1/8 of a phone photo).
# Inspecting a 1280x960 photo took 16.6 ms at 512 px and takes 1.9 ms, with the same
# distances between the test scenes; at 64 px two different lamps came 4 bits closer.
_HASH_WORK_SIZE = (128, 128)
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class PhotoError(ValueError):
    """A photo we cannot accept; `reason` selects the message shown to the captain."""

    reason: ClassVar[str] = "corrupt"

    def __init__(self, detail: str = "", **params: Any) -> None:
        super().__init__(detail or self.reason)
        self.detail = detail
        self.params: dict[str, Any] = params

    @property
    def message_key(self) -> str:
        """Catalog key of the polite answer, e.g. ``error.photo.too_large``."""
        return f"error.photo.{self.reason}"


class EmptyPhoto(PhotoError):
    reason = "empty"


class PhotoTooLarge(PhotoError):
    reason = "too_large"


class NotAnImage(PhotoError):
    reason = "not_an_image"


class CorruptImage(PhotoError):
    reason = "corrupt"


class TooManyPixels(PhotoError):
    reason = "too_many_pixels"


PHOTO_ERROR_REASONS: tuple[str, ...] = tuple(
    cls.reason for cls in (EmptyPhoto, PhotoTooLarge, NotAnImage, CorruptImage, TooManyPixels)
)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What we learned about an accepted photo.

    `width`/`height` are as the photo is displayed (EXIF orientation applied), and `phash` is
    computed on the displayed picture, so a document photo and Telegram's recompressed copy of
    it hash alike.
    """

    sha256: str
    size: int
    format: str
    width: int
    height: int
    phash: str
    latitude: float | None = None
    longitude: float | None = None

    @property
    def ext(self) -> str:
        """File extension to store it under (``jpg``, ``png``, ``webp``)."""
        return _EXT_BY_FORMAT[self.format]

    @property
    def gps(self) -> tuple[float, float] | None:
        """(latitude, longitude) from EXIF, or None."""
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)


def inspect_image(
    data: bytes,
    *,
    max_bytes: int = MAX_PHOTO_BYTES,
    max_pixels: int = MAX_PHOTO_PIXELS,
) -> ImageInfo:
    """Check that `data` is a whole, reasonably sized photo and describe it.

    Raises a `PhotoError` subclass: EmptyPhoto, PhotoTooLarge, NotAnImage, CorruptImage (also
    for truncated files and zero-size images) or TooManyPixels. CPU-bound: call it through
    `asyncio.to_thread` from handlers.
    """
    data = _check_bytes(data, max_bytes=max_bytes)
    with _opened(data, max_pixels=max_pixels) as image:
        # verify() checks structure (PNG CRCs...) but passes many truncated JPEGs, hence
        # the full decode on a fresh open below.
        _decode(image.verify)
    with _opened(data, max_pixels=max_pixels) as image:
        fmt = image.format or ""
        width, height = image.size
        if fmt in ("JPEG", "MPO"):
            # Decode at reduced scale: libjpeg still walks the whole stream, so truncation
            # is caught, at a fraction of the cost of a full-size decode.
            image.draft(None, _HASH_WORK_SIZE)
        _decode(image.load)
        exif = _read_exif(image)
        orientation = exif.get(ExifTags.Base.Orientation, 1) if exif is not None else 1
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        if orientation != 1:  # turning copies the picture: only when there is a turn
            try:
                ImageOps.exif_transpose(image, in_place=True)
            except Exception:  # a broken orientation tag must not cost us the photo
                log.debug("ignoring unusable EXIF orientation", exc_info=True)
        phash = str(imagehash.phash(image))
    gps = _gps_from_exif(exif) if exif is not None else None
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        format=fmt,
        width=width,
        height=height,
        phash=phash,
        latitude=gps[0] if gps else None,
        longitude=gps[1] if gps else None,
    )


def strip_metadata(data: bytes, *, max_pixels: int = MAX_PHOTO_PIXELS) -> bytes:
    """Re-encode a photo upright and without EXIF/XMP, so showing it to others leaks no GPS.

    PNG stays PNG (lossless); everything else becomes JPEG. Raises `PhotoError` like
    `inspect_image`.
    """
    data = _check_bytes(data, max_bytes=MAX_PHOTO_BYTES)
    with _opened(data, max_pixels=max_pixels) as image:
        fmt = image.format
        icc_profile = image.info.get("icc_profile")
        _decode(image.load)
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:
            log.debug("ignoring unusable EXIF orientation", exc_info=True)
            upright = image.copy()
    # A copy carries the original's info dict (exif, xmp, text chunks); start clean and
    # keep only the colour profile, which says nothing about the captain.
    upright.info = {}
    out = io.BytesIO()
    save_args: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if fmt == "PNG":
        upright.save(out, format="PNG", **save_args)
    else:
        _as_jpeg_mode(upright).save(out, format="JPEG", quality=90, **save_args)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    sha256: str
    path: Path
    size: int


@dataclass(slots=True)
class PhotoStore:
    """Content-addressed photo files: ``root/photos/ab/cd/<sha256>.<ext>``.

    The same bytes always land at the same path and are written once; writes go through a
    temporary file and `os.replace`, so a crash never leaves half a photo behind.
    """

    root: Path
    _photos: Path = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._photos = self.root / "photos"

    def put(self, data: bytes, *, ext: str) -> StoredPhoto:
        """Store `data` (idempotent) and say where it lives."""
        data = bytes(data)
        if not data:
            raise EmptyPhoto("refusing to store an empty photo")
        ext = _normalise_ext(ext)
        sha256 = hashlib.sha256(data).hexdigest()
        existing = self._find(sha256)
        # A size mismatch means the file was damaged outside our control: write it again.
        if existing is not None and existing.stat().st_size == len(data):
            return StoredPhoto(sha256=sha256, path=existing, size=len(data))
        directory = self._bucket(sha256)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{sha256}.{ext}"
        _write_atomically(final, data)
        if existing is not None and existing != final:
            existing.unlink(missing_ok=True)
        return StoredPhoto(sha256=sha256, path=final, size=len(data))

    def path_for(self, sha256: str) -> Path:
        """Path of a stored photo; FileNotFoundError if we never stored it."""
        found = self._find(sha256)
        if found is None:
            raise FileNotFoundError(f"no stored photo {sha256}")
        return found

    def open(self, sha256: str) -> bytes:
        """The stored bytes of a photo; FileNotFoundError if we never stored it."""
        return self.path_for(sha256).read_bytes()

    def __contains__(self, sha256: object) -> bool:
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
            return False
        return self._find(sha256) is not None

    def _bucket(self, sha256: str) -> Path:
        # The digest is the only part of a path that could come from outside (a callback,
        # a database row); accept nothing but 64 hex digits so it can never climb out.
        if not _SHA256_RE.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self._photos / sha256[:2] / sha256[2:4]

    def _find(self, sha256: str) -> Path | None:
        directory = self._bucket(sha256)
        for ext in sorted(_STORABLE_EXTS):
            candidate = directory / f"{sha256}.{ext}"
            if candidate.is_file():
                return candidate
        return None


def draw_sample_scene(
    seed: int = 0, label: str | None = None, *, width: int = 640, height: int = 480
) -> Image.Image:
    """A plausible street scene (sky, buildings, a problem spot, a caption banner).

    Deterministic per seed, and different seeds give clearly different perceptual hashes,
    so the demo and tests can tell "the same photo again" from "another problem".
    """
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = int(height * rng.uniform(0.35, 0.65))
    sky_top, sky_low = _random_colour(rng, 120, 255), _random_colour(rng, 80, 230)
    for y in range(horizon):
        draw.line([(0, y), (width, y)], fill=_blend(sky_top, sky_low, y / max(horizon, 1)))
    draw.rectangle([0, horizon, width, height], fill=_random_colour(rng, 30, 160))
    # Large, randomly placed blocks dominate the low frequencies that phash looks at.
    for _ in range(rng.randint(2, 5)):
        left = rng.randint(-width // 8, width - width // 6)
        right = left + rng.randint(width // 6, width // 2)
        top = rng.randint(height // 20, horizon)
        draw.rectangle([left, top, right, horizon], fill=_random_colour(rng, 0, 255))
        window = _random_colour(rng, 180, 255)
        step = max(8, width // 24)
        for wx in range(left + step // 2, right - step // 2, step):
            for wy in range(top + step // 2, horizon - step // 2, step):
                draw.rectangle([wx, wy, wx + step // 3, wy + step // 3], fill=window)
    # The "problem": a puddle, a heap of rubbish or a fallen sign, somewhere on the ground.
    cx, cy = rng.randint(0, width), rng.randint(horizon, height)
    rx, ry = rng.randint(width // 10, width // 3), rng.randint(height // 20, height // 6)
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_random_colour(rng, 0, 255))
    if label:
        font = _label_font(max(12, height // 18))
        banner = int(height * 0.12)
        draw.rectangle([0, height - banner, width, height], fill=(20, 20, 20))
        draw.text((width // 40, height - banner + banner // 5), label, font=font, fill="white")
    return image


def sample_photo(
    seed: int = 0, label: str | None = None, *, width: int = 640, height: int = 480
) -> bytes:
    """`draw_sample_scene` as JPEG bytes, like a photo a captain would post (for the demo)."""
    out = io.BytesIO()
    draw_sample_scene(seed, label, width=width, height=height).save(out, "JPEG", quality=85)
    return out.getvalue()


# --- internals -------------------------------------------------------------------------


def _check_bytes(data: bytes, *, max_bytes: int) -> bytes:
    data = bytes(data)
    if not data:
        raise EmptyPhoto("no bytes")
    if len(data) > max_bytes:
        raise PhotoTooLarge(
            f"{len(data)} bytes > {max_bytes}", limit_mb=max_bytes // (1024 * 1024)
        )
    return data


@contextlib.contextmanager
def _opened(data: bytes, *, max_pixels: int) -> Iterator[Image.Image]:
    """Open with Pillow's bomb guard made strict, plus our own, lower pixel limit."""
    too_many = TooManyPixels(max_megapixels=max_pixels // 1_000_000)
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x its limit; we want a refusal, not a log line.
        # (catch_warnings is process-wide; the worst a race can do is leave this filter on,
        # which still refuses bombs.)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_ALLOWED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise too_many from exc
        except Image.UnidentifiedImageError as exc:
            if data.startswith(_IMAGE_MAGIC) or data[8:12] == b"WEBP":
                raise CorruptImage("looks like an image but cannot be read") from exc
            raise NotAnImage("not a JPEG, PNG or WebP image") from exc
        except Exception as exc:  # Pillow's plugins raise many types on hostile headers
            raise CorruptImage(str(exc)) from exc
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise CorruptImage("zero-size image")
        if width * height > max_pixels:
            raise too_many
        yield image


def _decode(step: Any) -> None:
    try:
        step()
    except PhotoError:
        raise
    except Exception as exc:  # truncated data, bad CRCs, zlib errors, broken markers...
        raise CorruptImage(str(exc) or type(exc).__name__) from exc


def _read_exif(image: Image.Image) -> Image.Exif | None:
    # A mangled EXIF block is common (editors, messengers) and must not cost us the photo.
    try:
        return image.getexif()
    except Exception:
        log.debug("ignoring unreadable EXIF", exc_info=True)
        return None


def _gps_from_exif(exif: Image.Exif) -> tuple[float, float] | None:
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        log.debug("ignoring unreadable GPS IFD", exc_info=True)
        return None
    if not gps:
        return None
    lat = _signed_degrees(
        gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S"
    )
    lon = _signed_degrees(
        gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W"
    )
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None
    # Cameras without a fix often write 0/0; "null island" is never a real report.
    if lat == 0 and lon == 0:
        return None
    return (round(lat, 7), round(lon, 7))


def _signed_degrees(dms: Any, ref: Any, positive: str, negative: str) -> float | None:
    """DMS rationals plus an N/S/E/W reference to signed decimal degrees, None if unusable."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if not isinstance(ref, str):
        return None
    ref = ref.strip("\x00 ").upper()
    # Without a reference the hemisphere is a guess; no location beats a wrong one.
    if ref not in (positive, negative):
        return None
    if not isinstance(dms, tuple | list) or not 1 <= len(dms) <= 3:
        return None
    try:
        parts = [float(part) for part in dms]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(part) and part >= 0 for part in parts):
        return None
    degrees = sum(part / 60**i for i, part in enumerate(parts))
    return -degrees if ref == negative else degrees


def _normalise_ext(ext: str) -> str:
    ext = ext.lower().lstrip(".")
    ext = "jpg" if ext == "jpeg" else ext
    if ext not in _STORABLE_EXTS:
        raise ValueError(
            f"cannot store photos as .{ext}; expected one of {sorted(_STORABLE_EXTS)}"
        )
    return ext


def _write_atomically(final: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(final.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _as_jpeg_mode(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "L", "CMYK"):
        return image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        # Transparent areas would otherwise turn black; white is what a viewer expects.
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _random_colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


# Fonts with Chinese glyphs, where distributions usually put them; Pillow's built-in font has
# none, so a Chinese label falls back to boxes when none of these is installed.
_CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


@functools.lru_cache(maxsize=8)
def _label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in _CJK_FONT_CANDIDATES:
        if Path(candidate).is_file():
            with contextlib.suppress(OSError):
                return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)

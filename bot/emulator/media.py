"""Files the emulator holds: photos recompressed into Telegram's sizes, documents kept as-is.

Identical content always gets the same ``file_unique_id`` (and, here, the same ``file_id``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import mimetypes
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

PHOTO_SIDES = (90, 320, 800, 1280)  # Telegram's s/m/x/y thumbnails, longest side in pixels
GETFILE_LIMIT = 20 * 1024 * 1024  # bots may download at most 20 MB through getFile


@dataclass(slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def file_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }

    def photo_size_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": self.size,
        }


class ImageUndecodable(ValueError):
    """The bytes are not an image Pillow can read."""


def _digest(kind: str, data: bytes, length: int) -> str:
    raw = hashlib.sha256(kind.encode() + b"\0" + data).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:length]


def recompress(data: bytes) -> list[tuple[bytes, int, int]]:
    """Decode an image and re-encode it as JPEG at Telegram's sizes, never upscaling.

    Returns (jpeg bytes, width, height) smallest first; raises :class:`ImageUndecodable`.
    EXIF (GPS included) is dropped, and orientation is applied, as Telegram does for photos.
    """
    try:
        with warnings.catch_warnings():
            # A decompression bomb is an undecodable photo here, not a test-run warning.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                image = ImageOps.exif_transpose(opened)
                image.load()
    except Exception as error:  # Pillow raises many types for bad input
        raise ImageUndecodable(str(error)) from error
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    longest = max(image.size)
    sides = sorted({min(side, longest) for side in PHOTO_SIDES})
    sizes: list[tuple[bytes, int, int]] = []
    for side in sides:
        copy = image.copy()
        copy.thumbnail((side, side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG", quality=87)
        sizes.append((buffer.getvalue(), copy.width, copy.height))
    return sizes


def guess_size(data: bytes) -> tuple[int, int]:
    """Best-effort dimensions of an image that cannot be decoded fully (e.g. a truncated JPEG)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as opened:
                return opened.size
    except Exception:  # header unreadable too: pretend a common phone-photo size
        return 1280, 960


class FileStore:
    """Every file the emulator knows, by file_id and by download path."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        # file_id of any size -> the whole PhotoSize list it belongs to
        self._photo_sets: dict[str, list[StoredFile]] = {}
        # sha256 of uploaded bytes -> its PhotoSize list, so repeated photos cost nothing
        self._photo_cache: dict[bytes, list[StoredFile]] = {}
        self._raw_photos: set[bytes] = set()  # uploads Pillow could not decode
        self._document_meta: dict[str, dict[str, str | None]] = {}

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)

    def photo_set(self, file_id: str) -> list[StoredFile] | None:
        return self._photo_sets.get(file_id)

    def _put(self, kind: str, data: bytes, extension: str, **dims: int) -> StoredFile:
        file_id = _FILE_ID_PREFIX[kind] + _digest("id-" + kind, data, 48)
        existing = self._by_id.get(file_id)
        if existing is not None:
            return existing
        unique = "AQAD" + _digest(kind, data, 12)
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=unique,
            file_path=f"{kind}s/file_{unique}{extension}",
            data=data,
            **dims,
        )
        self._by_id[file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def cached_photo(self, data: bytes) -> list[StoredFile] | None:
        return self._photo_cache.get(hashlib.sha256(data).digest())

    def add_photo(
        self, data: bytes, sizes: list[tuple[bytes, int, int]] | None
    ) -> list[StoredFile]:
        """Store a photo; ``sizes`` from :func:`recompress`, or None to keep the raw bytes."""
        key = hashlib.sha256(data).digest()
        cached = self._photo_cache.get(key)
        if cached is not None:
            return cached
        if sizes is None:
            self._raw_photos.add(key)
            width, height = guess_size(data)
            sizes = [(data, width, height)]
        photo = [
            self._put("photo", jpeg, ".jpg", width=width, height=height)
            for jpeg, width, height in sizes
        ]
        for item in photo:
            self._photo_sets[item.file_id] = photo
        self._photo_cache[key] = photo
        return photo

    def is_raw(self, data: bytes) -> bool:
        """True when these bytes were stored as a photo without decoding (corrupt image)."""
        return hashlib.sha256(data).digest() in self._raw_photos

    def document_meta(self, file_id: str) -> dict[str, str | None] | None:
        return self._document_meta.get(file_id)

    def set_document_meta(self, file_id: str, meta: Mapping[str, str | None]) -> None:
        self._document_meta.setdefault(file_id, dict(meta))

    def add_document(self, data: bytes, *, file_name: str | None) -> StoredFile:
        extension = ""
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1][:8]
        return self._put("document", data, extension)


_FILE_ID_PREFIX = {"photo": "AgACAgIAAxkBAAI", "document": "BQACAgIAAxkBAAI"}


def guess_mime(file_name: str | None, declared: str | None) -> str:
    if declared and declared != "application/octet-stream":
        return declared
    guessed = mimetypes.guess_type(file_name or "")[0]
    return guessed or declared or "application/octet-stream"

"""Photo intake: what a captain's photo (or something pretending to be one) turns into."""

from __future__ import annotations

import io
import itertools
import random
from pathlib import Path

import imagehash
import pytest
from PIL import ExifTags, Image, ImageChops, ImageStat

from bot import photos
from bot.photos import (
    MAX_PHOTO_BYTES,
    PHOTO_ERROR_REASONS,
    CorruptImage,
    EmptyPhoto,
    NotAnImage,
    PhotoError,
    PhotoStore,
    PhotoTooLarge,
    TooManyPixels,
    inspect_image,
    sample_photo,
    strip_metadata,
)

from factories import (
    big_blob,
    corrupt_jpeg,
    fake_pdf,
    make_jpeg,
    make_png,
    png_header_only,
)

FENYANG_ROAD = (31.2101234, 121.4523456)


def hamming(a: str, b: str) -> int:
    return imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)


# --- inspect_image: good photos -------------------------------------------------------------


def test_a_jpeg_is_described() -> None:
    data = make_jpeg(800, 600, seed=3)

    info = inspect_image(data)

    assert (info.width, info.height, info.format, info.ext) == (800, 600, "JPEG", "jpg")
    assert info.size == len(data)
    assert len(info.sha256) == 64
    assert len(info.phash) == 16
    assert info.gps is None


def test_a_png_is_described() -> None:
    info = inspect_image(make_png(320, 200, seed=1))

    assert (info.width, info.height, info.format, info.ext) == (320, 200, "PNG", "png")


@pytest.mark.parametrize("mode", ["RGBA", "P", "L"])
def test_pngs_in_other_colour_modes_are_accepted(mode: str) -> None:
    assert inspect_image(make_png(64, 48, mode=mode)).format == "PNG"


@pytest.mark.parametrize(
    "lat_lon",
    [FENYANG_ROAD, (-33.8567844, 151.2152967), (40.6892494, -74.0445004), (-22.95, -43.21)],
)
def test_exif_gps_becomes_signed_decimal_degrees(lat_lon: tuple[float, float]) -> None:
    info = inspect_image(make_jpeg(seed=2, gps=lat_lon))

    assert info.gps == pytest.approx(lat_lon, abs=1e-5)


def test_exif_gps_is_read_from_png_too() -> None:
    info = inspect_image(make_png(seed=2, gps=FENYANG_ROAD))

    assert info.gps == pytest.approx(FENYANG_ROAD, abs=1e-5)


def test_zero_zero_gps_is_treated_as_no_fix() -> None:
    assert inspect_image(make_jpeg(gps=(0.0, 0.0))).gps is None


def _jpeg_with_gps_ifd(gps_ifd: dict[int, object]) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Odd phone"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps_ifd)
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "grey").save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    "gps_ifd",
    [
        # no hemisphere references: a guess could put the report on the wrong continent
        {ExifTags.GPS.GPSLatitude: (31.0, 12.0, 0.0), ExifTags.GPS.GPSLongitude: (121.0, 0, 0)},
        # latitude only
        {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (31.0, 12.0, 0.0)},
        # out of range
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (131.0, 0.0, 0.0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (121.0, 0.0, 0.0),
        },
        # garbage reference
        {
            ExifTags.GPS.GPSLatitudeRef: "Q",
            ExifTags.GPS.GPSLatitude: (31.0, 0.0, 0.0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (121.0, 0.0, 0.0),
        },
    ],
)
def test_unusable_gps_is_ignored_but_the_photo_is_kept(gps_ifd: dict[int, object]) -> None:
    info = inspect_image(_jpeg_with_gps_ifd(gps_ifd))

    assert info.gps is None
    assert info.width == 40


def test_sideways_phone_photo_reports_upright_size() -> None:
    # Orientation 6: the sensor stored it landscape, it is shown portrait.
    info = inspect_image(make_jpeg(640, 480, orientation=6))

    assert (info.width, info.height) == (480, 640)


def test_recompressed_copy_has_the_same_phash_and_other_scenes_do_not() -> None:
    original = make_jpeg(1280, 960, seed=7)
    smaller = Image.open(io.BytesIO(original)).resize((640, 480))
    out = io.BytesIO()
    smaller.save(out, "JPEG", quality=60)

    assert hamming(inspect_image(original).phash, inspect_image(out.getvalue()).phash) <= 4
    hashes = [inspect_image(make_jpeg(seed=seed)).phash for seed in range(12)]
    assert min(hamming(a, b) for a, b in itertools.combinations(hashes, 2)) > 10


def test_same_seed_gives_the_same_bytes() -> None:
    assert make_jpeg(seed=5) == make_jpeg(seed=5)
    assert make_jpeg(seed=5) != make_jpeg(seed=6)


def test_sample_photo_with_a_chinese_label_is_a_valid_jpeg() -> None:
    info = inspect_image(sample_photo(4, "汾阳路13号 旱厕堵了"))

    assert info.format == "JPEG"


# --- inspect_image: what must be refused ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        (b"", EmptyPhoto, "empty"),
        (bytearray(), EmptyPhoto, "empty"),
        ("汾阳路13号 旱厕堵了".encode(), NotAnImage, "not_an_image"),
        (b"<b>not a photo</b><script>alert(1)</script>", NotAnImage, "not_an_image"),
        (fake_pdf(), NotAnImage, "not_an_image"),
        (random.Random(0).randbytes(4096), NotAnImage, "not_an_image"),
        (corrupt_jpeg(), CorruptImage, "corrupt"),
        (make_jpeg()[:-40], CorruptImage, "corrupt"),
        (b"\xff\xd8\xff\xe0" + bytes(100), CorruptImage, "corrupt"),
        (png_header_only(0, 0), CorruptImage, "corrupt"),
        (png_header_only(0, 480), CorruptImage, "corrupt"),
        (png_header_only(64, 48), CorruptImage, "corrupt"),
    ],
    ids=[
        "empty",
        "empty-bytearray",
        "chinese-text",
        "html",
        "pdf",
        "random",
        "truncated-half",
        "truncated-tail",
        "jpeg-magic-then-zeros",
        "png-zero-size",
        "png-zero-width",
        "png-no-pixel-data",
    ],
)
def test_bad_input_is_refused_with_a_reason(
    data: bytes, error: type[PhotoError], reason: str
) -> None:
    with pytest.raises(error) as caught:
        inspect_image(data)

    assert caught.value.reason == reason
    assert caught.value.message_key == f"error.photo.{reason}"


def test_corrupt_png_chunk_is_refused() -> None:
    data = bytearray(make_png(seed=1))
    data[len(data) // 2] ^= 0xFF  # flip a byte inside the image data: CRC no longer matches

    with pytest.raises(CorruptImage):
        inspect_image(bytes(data))


def test_more_than_twenty_megabytes_is_refused_before_decoding() -> None:
    with pytest.raises(PhotoTooLarge) as caught:
        inspect_image(big_blob(25 * 1024 * 1024))

    assert caught.value.reason == "too_large"
    assert caught.value.params == {"limit_mb": 20}


def test_exactly_the_limit_is_not_too_large() -> None:
    # Passes the size check, then fails as the zeros it is: not_an_image, not too_large.
    with pytest.raises(NotAnImage):
        inspect_image(big_blob(MAX_PHOTO_BYTES))


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (8_000, 8_000),  # 64 MP: over our limit, under Pillow's
        (10_000, 10_000),  # 100 MP: where Pillow only warns
        (30_000, 30_000),  # 900 MP: where Pillow refuses
        (2**31 - 1, 2**31 - 1),  # hostile header
    ],
)
def test_decompression_bombs_are_refused_without_decoding(width: int, height: int) -> None:
    bomb = png_header_only(width, height)
    assert len(bomb) < 200

    with pytest.raises(TooManyPixels) as caught:
        inspect_image(bomb)

    assert caught.value.reason == "too_many_pixels"
    assert caught.value.params == {"max_megapixels": 50}


def test_our_pixel_limit_applies_to_our_call_only() -> None:
    before = Image.MAX_IMAGE_PIXELS

    with pytest.raises(TooManyPixels):
        inspect_image(make_png(200, 100), max_pixels=10_000)

    assert before == Image.MAX_IMAGE_PIXELS
    assert inspect_image(make_png(200, 100)).width == 200


def test_every_error_reason_is_distinct_and_listed() -> None:
    assert sorted(PHOTO_ERROR_REASONS) == sorted(
        {"empty", "too_large", "not_an_image", "corrupt", "too_many_pixels"}
    )


# --- PhotoStore -----------------------------------------------------------------------------


def test_put_is_content_addressed(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)
    data = make_jpeg(seed=1)
    info = inspect_image(data)

    stored = store.put(data, ext=info.ext)

    sha = info.sha256
    assert stored.sha256 == sha
    assert stored.size == len(data)
    assert stored.path == tmp_path / "photos" / sha[:2] / sha[2:4] / f"{sha}.jpg"
    assert store.path_for(sha) == stored.path
    assert store.open(sha) == data
    assert sha in store


def test_put_twice_returns_the_same_file_without_rewriting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PhotoStore(tmp_path)
    data = make_png(seed=2)
    first = store.put(data, ext="png")
    before = first.path.stat()

    def no_rewrite(*args: object) -> None:
        raise AssertionError("an identical photo was written again")

    monkeypatch.setattr(photos.os, "replace", no_rewrite)
    second = store.put(data, ext=".PNG")

    assert second == first
    assert (second.path.stat().st_ino, second.path.stat().st_mtime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
    )


def test_same_bytes_under_another_extension_are_not_stored_twice(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)
    data = make_jpeg(seed=3)

    assert store.put(data, ext="jpg") == store.put(data, ext="jpeg")
    assert len(list((tmp_path / "photos").rglob("*.*"))) == 1


def test_a_damaged_stored_file_is_repaired(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)
    data = make_jpeg(seed=4)
    stored = store.put(data, ext="jpg")
    stored.path.write_bytes(data[:100])

    store.put(data, ext="jpg")

    assert store.open(stored.sha256) == data


def test_different_photos_get_different_paths(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)

    paths = {store.put(make_jpeg(seed=seed), ext="jpg").path for seed in range(5)}

    assert len(paths) == 5


def test_a_crash_while_writing_leaves_neither_half_file_nor_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PhotoStore(tmp_path)
    data = make_jpeg(seed=5)
    sha = inspect_image(data).sha256

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(photos.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.put(data, ext="jpg")

    assert sha not in store
    assert [p for p in (tmp_path / "photos").rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    assert store.put(data, ext="jpg").path.read_bytes() == data


def test_normal_puts_leave_no_temp_files(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)
    for seed in range(3):
        store.put(make_jpeg(seed=seed), ext="jpg")

    names = [p.name for p in (tmp_path / "photos").rglob("*") if p.is_file()]
    assert len(names) == 3
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]


def test_unknown_photos_are_not_found(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)

    with pytest.raises(FileNotFoundError):
        store.open("0" * 64)
    assert "0" * 64 not in store


@pytest.mark.parametrize(
    "sha", ["../../etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "/..", "", "../" + "0" * 61]
)
def test_hostile_digests_never_reach_the_filesystem(tmp_path: Path, sha: str) -> None:
    store = PhotoStore(tmp_path)

    with pytest.raises(ValueError, match="sha256"):
        store.path_for(sha)
    assert sha not in store


@pytest.mark.parametrize("ext", ["exe", "jpg/../../x", "", "pdf"])
def test_only_photo_extensions_are_stored(tmp_path: Path, ext: str) -> None:
    with pytest.raises(ValueError, match="cannot store"):
        PhotoStore(tmp_path).put(make_jpeg(), ext=ext)


def test_an_empty_photo_is_not_stored(tmp_path: Path) -> None:
    with pytest.raises(EmptyPhoto):
        PhotoStore(tmp_path).put(b"", ext="jpg")


# --- strip_metadata -------------------------------------------------------------------------


def test_strip_metadata_removes_gps_and_keeps_the_picture() -> None:
    original = make_jpeg(seed=6, gps=FENYANG_ROAD)
    assert inspect_image(original).gps is not None

    stripped = strip_metadata(original)

    info = inspect_image(stripped)
    assert info.gps is None
    assert (info.width, info.height) == (640, 480)
    assert hamming(info.phash, inspect_image(original).phash) <= 2
    reopened = Image.open(io.BytesIO(stripped))
    assert not reopened.getexif()
    assert b"GridbotTestCam" not in stripped
    diff = ImageChops.difference(
        Image.open(io.BytesIO(original)).convert("RGB"), reopened.convert("RGB")
    )
    assert max(ImageStat.Stat(diff).mean) < 4


def test_strip_metadata_keeps_png_pixels_exactly() -> None:
    original = make_png(seed=7, gps=FENYANG_ROAD)

    stripped = strip_metadata(original)

    reopened = Image.open(io.BytesIO(stripped))
    assert reopened.format == "PNG"
    reopened.load()
    assert "exif" not in reopened.info
    assert inspect_image(stripped).gps is None
    assert reopened.tobytes() == Image.open(io.BytesIO(original)).convert("RGB").tobytes()


def test_strip_metadata_removes_xmp_too() -> None:
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>31,12N</exif:GPSLatitude>'
    Image.new("RGB", (50, 40), "teal").save(out, "JPEG", xmp=xmp + b"</x:xmpmeta>")
    assert b"GPSLatitude" in out.getvalue()

    assert b"GPSLatitude" not in strip_metadata(out.getvalue())


def test_strip_metadata_turns_a_sideways_photo_upright() -> None:
    stripped = strip_metadata(make_jpeg(640, 480, orientation=6))

    reopened = Image.open(io.BytesIO(stripped))
    assert reopened.size == (480, 640)
    assert ExifTags.Base.Orientation not in reopened.getexif()


def test_strip_metadata_flattens_transparency_for_jpeg() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (30, 20), (255, 0, 0, 0)).save(out, "WEBP", lossless=True)

    stripped = strip_metadata(out.getvalue())

    reopened = Image.open(io.BytesIO(stripped))
    assert reopened.format == "JPEG"
    assert reopened.convert("RGB").getpixel((15, 10)) == pytest.approx((255, 255, 255), abs=3)


@pytest.mark.parametrize("data", [b"", fake_pdf(), corrupt_jpeg(), png_header_only(9000, 9000)])
def test_strip_metadata_refuses_what_inspect_refuses(data: bytes) -> None:
    with pytest.raises(PhotoError):
        strip_metadata(data)

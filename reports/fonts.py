"""The Chinese font the digest's pictures and PDF are drawn with: the configured one, else one of
Debian's CJK font packages, checked to be TrueType (the PDF embeds only those) with Chinese."""

from __future__ import annotations

import functools
from pathlib import Path

from fontTools.ttLib import TTFont

__all__ = ["DEBIAN_FONTS", "FontMissing", "cjk_font"]

# Where Debian's packages put CJK fonts with TrueType outlines, best looking first. Noto CJK
# (fonts-noto-cjk) is missing on purpose: its outlines are CFF, which reportlab cannot embed.
DEBIAN_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
    Path("/usr/share/fonts/truetype/arphic/ukai.ttc"),  # fonts-arphic-ukai
    Path("/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf"),  # fonts-arphic-gbsn00lp
    Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf"),  # fonts-arphic-gkai00mp
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
)
# Characters every digest prints; a font without them would draw boxes.
SAMPLE = "汾阳路社区工作站街道周报超期办结"
HOW_TO_GET_ONE = (
    "install Debian's fonts-wqy-microhei (sudo apt-get install fonts-wqy-microhei; `make` does "
    "it) or set GRIDBOT_FONT to a .ttf/.ttc font with Chinese glyphs and TrueType outlines"
)
_EMBEDDING_RESTRICTED = 0x0002  # OS/2 fsType: the licence forbids embedding (reportlab refuses)


class FontMissing(RuntimeError):
    """No usable CJK TrueType font; the message says which file failed and how to get one."""


def cjk_font(configured: Path | None = None) -> Path:
    """The font file to draw Chinese with: `configured` (GRIDBOT_FONT), which must then be
    usable, else the first usable one of `DEBIAN_FONTS`; FontMissing otherwise."""
    if configured is not None:
        problem = _problem(Path(configured).expanduser().resolve())
        if problem is not None:
            raise FontMissing(f"GRIDBOT_FONT={configured} {problem}; {HOW_TO_GET_ONE}")
        return Path(configured).expanduser().resolve()
    for candidate in DEBIAN_FONTS:
        if candidate.is_file() and _problem(candidate) is None:
            return candidate
    raise FontMissing(f"no Chinese TrueType font is installed; {HOW_TO_GET_ONE}")


def _problem(path: Path) -> str | None:
    """Why this file cannot draw the digest (None when it can)."""
    if not path.is_file():
        return "is not a file"
    stat = path.stat()
    return _inspect(path, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _inspect(path: Path, mtime_ns: int, size: int) -> str | None:
    # Cached per version of the file: every digest asks again, and reading a 5 MB collection
    # each time would be waste; a font replaced on disk is read afresh.
    try:
        # The first face of a collection (.ttc) is the one matplotlib and reportlab use. Reading
        # a damaged font fails in many ways (TTLibError, struct.error, AssertionError...).
        # The file is opened here so that it is closed even when fontTools gives up half-way.
        with path.open("rb") as file, TTFont(file, fontNumber=0, lazy=True) as font:
            outlines = "glyf" in font
            cmap = font.getBestCmap() or {}
            restricted = "OS/2" in font and font["OS/2"].fsType & _EMBEDDING_RESTRICTED
    except Exception as error:
        return f"is not a font file that can be read ({error})"
    if not outlines:
        return "has PostScript (CFF) outlines, which the PDF cannot embed (TrueType is needed)"
    lacking = "".join(sorted({char for char in SAMPLE if ord(char) not in cmap}))
    if lacking:
        return f"has no Chinese glyphs (it lacks {lacking})"
    if restricted:
        return "does not allow embedding in a PDF (its licence)"
    return None

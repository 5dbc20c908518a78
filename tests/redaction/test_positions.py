"""A position or a named place is found wherever an image's metadata can hide one (EXIF GPS,
XMP, IPTC) in JPEG, MPO, PNG, TIFF, WebP and GIF files; files without one, and files that
are not images, are not flagged; damaged or oversized metadata counts as a position; the
rendition made from the pixels carries none of it.

Every file is real and tiny (16 x 16 pixels), written by Pillow, with the segments, chunks,
tags and blocks Pillow cannot write added by hand as their formats define them. Places are
fictional.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageCms, PngImagePlugin, TiffImagePlugin
from PIL.ExifTags import IFD, Base

from portal.redaction import positions
from portal.redaction.positions import METADATA_LIMIT, carries_position
from portal.redaction.renditions import redact
from tests.support.hostile import metadata_of_image

EXIF_NS = "http://ns.adobe.com/exif/1.0/"
PHOTOSHOP_NS = "http://ns.adobe.com/photoshop/1.0/"
IPTC_CORE_NS = "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
VILLAGE = "Kestrelmoor"

# --------------------------------------------------------------------------- building blocks


def _pixels(colour: str = "teal") -> Image.Image:
    return Image.new("RGB", (16, 16), colour)


def _exif(*, gps: bool) -> bytes:
    tags = Image.Exif()
    tags[Base.ImageDescription] = "Site visit, the well"
    if gps:
        tags.get_ifd(IFD.GPSInfo).update(
            {1: "N", 2: (52.0, 22.0, 30.0), 3: "E", 4: (4.0, 53.0, 1.0)}
        )
    return tags.tobytes()


def _xmp(properties: str, *bindings: tuple[str, str]) -> bytes:
    """An XMP packet with one description holding ``properties`` (attributes and
    elements), with ``bindings`` (prefix, namespace) declared on it."""
    declared = "".join(f' xmlns{":" + p if p else ""}="{ns}"' for p, ns in bindings)
    attributes, _, elements = properties.partition("|")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about=""{declared} {attributes}>{elements}</rdf:Description>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


GPS_XMP = _xmp('exif:GPSLatitude="52,22.5N" exif:GPSLongitude="4,53.0E"', ("exif", EXIF_NS))
CLEAN_XMP = _xmp(
    'dc:title="Site visit" exif:ExposureTime="1/60"',
    ("dc", "http://purl.org/dc/elements/1.1/"),
    ("exif", EXIF_NS),
)


def _iim(*datasets: tuple[int, str]) -> bytes:
    """IPTC IIM record 2 datasets (number, value)."""
    return b"".join(
        b"\x1c\x02" + bytes([number]) + struct.pack(">H", len(value.encode())) + value.encode()
        for number, value in datasets
    )


def _irb(resource: int, data: bytes) -> bytes:
    """One Photoshop image resource (empty name)."""
    return b"8BIM" + struct.pack(">HHI", resource, 0, len(data)) + data + b"\x00" * (len(data) % 2)


def _jpeg(**options: object) -> bytes:
    buffer = io.BytesIO()
    _pixels().save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _with_segments(jpeg: bytes, *segments: tuple[int, bytes]) -> bytes:
    """The JPEG with APPn segments (marker number, payload) inserted after its SOI."""
    inserted = b"".join(
        b"\xff" + bytes([0xE0 + number]) + struct.pack(">H", len(payload) + 2) + payload
        for number, payload in segments
    )
    return jpeg[:2] + inserted + jpeg[2:]


def _extended_xmp(packet: bytes, pieces: int) -> list[tuple[int, bytes]]:
    """APP1 segments carrying ``packet`` as extended XMP, in ``pieces`` pieces, last first."""
    step = -(-len(packet) // pieces)
    header = b"http://ns.adobe.com/xmp/extension/\x00" + b"0123456789ABCDEF0123456789ABCDEF"
    segments = [
        (1, header + struct.pack(">II", len(packet), start) + packet[start : start + step])
        for start in range(0, len(packet), step)
    ]
    return segments[::-1]


def _png(info: PngImagePlugin.PngInfo | None = None, **options: object) -> bytes:
    buffer = io.BytesIO()
    _pixels().save(buffer, "PNG", pnginfo=info, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _after_pixels(png: bytes, kind: bytes, data: bytes) -> bytes:
    """The PNG with a chunk added after its pixel data, just before IEND."""
    return png[:-12] + _png_chunk(kind, data) + png[-12:]


def _itxt(key: bytes, text: bytes, *, compressed: bool = False) -> bytes:
    body = zlib.compress(text) if compressed else text
    return key + b"\x00" + bytes([int(compressed), 0]) + b"en\x00\x00" + body


def _raw_profile(kind: str, data: bytes) -> str:
    """A profile as ImageMagick writes it into a PNG text chunk."""
    digits = data.hex()
    lines = "\n".join(digits[start : start + 72] for start in range(0, len(digits), 72))
    return f"\n{kind}\n{len(data):8d}\n{lines}\n"


def _png_text(key: str, text: str, *, compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, text, zip=compressed)
    return _png(info)


def _tiff(tags: dict[int, tuple[int, object]] | None = None, **options: object) -> bytes:
    """A TIFF with ``tags`` (number -> (TIFF type, value)) in its first page."""
    if tags:  # Pillow writes either these or the EXIF option, not both
        info = TiffImagePlugin.ImageFileDirectory_v2()
        for number, (kind, value) in tags.items():
            info[number] = value
            info.tagtype[number] = kind
        options["tiffinfo"] = info
    buffer = io.BytesIO()
    _pixels().save(buffer, "TIFF", **options)
    return buffer.getvalue()


def _two_page_tiff(second_exif: bytes) -> bytes:
    second = _pixels("navy")
    second.encoderinfo = {"exif": second_exif}
    buffer = io.BytesIO()
    _pixels().save(buffer, "TIFF", save_all=True, append_images=[second])
    return buffer.getvalue()


def _mpo(second_exif: bytes) -> bytes:
    """A two-frame MPO (a stereo photo) whose second frame carries ``second_exif``."""
    second = _pixels("navy")
    second.encoderinfo = {"exif": second_exif}
    buffer = io.BytesIO()
    _pixels().save(buffer, "MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


def _webp(**options: object) -> bytes:
    buffer = io.BytesIO()
    _pixels().save(buffer, "WEBP", **options)
    return buffer.getvalue()


def _gif(xmp: bytes | None = None) -> bytes:
    """A GIF, with an XMP application extension after its image when ``xmp`` is given
    (the packet raw, then the 258-byte "magic trailer" the XMP specification defines)."""
    buffer = io.BytesIO()
    _pixels().save(buffer, "GIF", comment=b"site visit")
    gif = buffer.getvalue()
    if xmp is None:
        return gif
    trailer = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"
    return gif[:-1] + b"!\xff\x0bXMP DataXMP" + xmp + trailer + gif[-1:]


# --------------------------------------------------------------------------- where a place hides

CITY_IN_IPTC = _iim((80, "A. Photographer"), (90, VILLAGE))

WITH_PLACE: dict[str, Callable[[], bytes]] = {
    "jpeg-exif-gps": lambda: _jpeg(exif=_exif(gps=True)),
    "jpeg-xmp-attributes": lambda: _jpeg(xmp=GPS_XMP),
    "jpeg-xmp-element-other-prefix": lambda: _jpeg(
        xmp=_xmp("|<ex:GPSLongitude>4,53.0E</ex:GPSLongitude>", ("ex", EXIF_NS))
    ),
    "jpeg-xmp-default-namespace": lambda: _jpeg(
        xmp=_xmp("|<GPSLatitude xmlns='http://ns.adobe.com/exif/1.0/'>52,22N</GPSLatitude>")
    ),
    "jpeg-xmp-utf16": lambda: _jpeg(xmp=GPS_XMP.decode().encode("utf-16")),
    "jpeg-xmp-photoshop-city": lambda: _jpeg(
        xmp=_xmp(f"photoshop:City='{VILLAGE}'", ("photoshop", PHOTOSHOP_NS))
    ),
    "jpeg-xmp-iptc-core-location": lambda: _jpeg(
        xmp=_xmp(
            f"|<Iptc4xmpCore:Location>{VILLAGE}</Iptc4xmpCore:Location>",
            ("Iptc4xmpCore", IPTC_CORE_NS),
        )
    ),
    "jpeg-xmp-iptc-ext-location-shown": lambda: _jpeg(
        xmp=_xmp(
            "|<ix:LocationShown><rdf:Bag><rdf:li rdf:parseType='Resource'>"
            f"<ix:City>{VILLAGE}</ix:City></rdf:li></rdf:Bag></ix:LocationShown>",
            ("ix", IPTC_EXT_NS),
        )
    ),
    "jpeg-extended-xmp": lambda: _with_segments(
        _jpeg(xmp=CLEAN_XMP), *_extended_xmp(b"<!-- padding -->" * 40 + GPS_XMP, pieces=3)
    ),
    "jpeg-iptc-city": lambda: _with_segments(
        _jpeg(), (13, b"Photoshop 3.0\x00" + _irb(0x0404, CITY_IN_IPTC))
    ),
    "jpeg-iptc-across-two-segments": lambda: _with_segments(
        _jpeg(),
        (13, b"Photoshop 3.0\x00" + _irb(0x03ED, b"\x00" * 16) + _irb(0x0404, CITY_IN_IPTC)[:9]),
        (13, b"Photoshop 3.0\x00" + _irb(0x0404, CITY_IN_IPTC)[9:]),
    ),
    "jpeg-photoshop-xmp": lambda: _with_segments(
        _jpeg(), (13, b"Photoshop 3.0\x00" + _irb(0x0424, GPS_XMP))
    ),
    "mpo-second-frame-gps": lambda: _mpo(_exif(gps=True)),
    "png-exif-chunk": lambda: _png(exif=_exif(gps=True)),
    "png-exif-after-pixels": lambda: _after_pixels(_png(), b"eXIf", _exif(gps=True)),
    "png-xmp-itxt": lambda: _png(_png_info_xmp(GPS_XMP)),
    "png-xmp-compressed-after-pixels": lambda: _after_pixels(
        _png(), b"iTXt", _itxt(b"XML:com.adobe.xmp", GPS_XMP, compressed=True)
    ),
    "png-raw-profile-exif": lambda: _png_text(
        "Raw profile type exif", _raw_profile("exif", b"Exif\x00\x00" + _exif(gps=True))
    ),
    "png-raw-profile-iptc-compressed": lambda: _png_text(
        "Raw profile type iptc", _raw_profile("iptc", _irb(0x0404, CITY_IN_IPTC)), compressed=True
    ),
    "tiff-gps": lambda: _tiff(exif=_exif(gps=True)),
    "tiff-xmp": lambda: _tiff({700: (1, GPS_XMP)}),
    "tiff-iptc": lambda: _tiff({33723: (7, _iim((101, "Freeland")))}),
    "tiff-photoshop": lambda: _tiff({34377: (1, _irb(0x0404, CITY_IN_IPTC))}),
    "tiff-second-page-gps": lambda: _two_page_tiff(_exif(gps=True)),
    "webp-exif-gps": lambda: _webp(exif=_exif(gps=True)),
    "webp-xmp": lambda: _webp(xmp=GPS_XMP),
    "gif-xmp-after-the-image": lambda: _gif(GPS_XMP),
}


def _png_info_xmp(packet: bytes) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode())
    return info


WITHOUT_PLACE: dict[str, Callable[[], bytes]] = {
    "jpeg": lambda: _jpeg(),
    "jpeg-exif-xmp-comment-no-place": lambda: _jpeg(
        exif=_exif(gps=False), xmp=CLEAN_XMP, comment=b"the well"
    ),
    "jpeg-iptc-names-only": lambda: _with_segments(
        _jpeg(), (13, b"Photoshop 3.0\x00" + _irb(0x0404, _iim((80, "A. Photographer"))))
    ),
    "jpeg-xmp-blank-places": lambda: _jpeg(
        xmp=_xmp(
            "exif:GPSLatitude=' ' |<photoshop:City/><photoshop:Country> </photoshop:Country>",
            ("exif", EXIF_NS),
            ("photoshop", PHOTOSHOP_NS),
        )
    ),
    "jpeg-xmp-gps-names-in-another-namespace": lambda: _jpeg(
        xmp=_xmp("exif:GPSLatitude='52,22N'", ("exif", "http://example.org/not-exif/"))
    ),
    "mpo": lambda: _mpo(_exif(gps=False)),
    "png": lambda: _png(),
    "png-text-and-exif-no-place": lambda: _after_pixels(
        _png(exif=_exif(gps=False)), b"tEXt", b"Comment\x00the well"
    ),
    "tiff": lambda: _tiff(exif=_exif(gps=False)),
    "tiff-two-pages": lambda: _two_page_tiff(_exif(gps=False)),
    "webp": lambda: _webp(exif=_exif(gps=False), xmp=CLEAN_XMP),
    "gif": lambda: _gif(),
    "gif-clean-xmp": lambda: _gif(CLEAN_XMP),
}


@pytest.mark.parametrize("build", WITH_PLACE.values(), ids=WITH_PLACE.keys())
def test_a_position_or_place_is_found_wherever_it_hides(
    tmp_path: Path, build: Callable[[], bytes]
) -> None:
    path = tmp_path / "photo"
    path.write_bytes(build())
    with Image.open(path):
        pass  # a file Pillow opens
    assert carries_position(path)


@pytest.mark.parametrize("build", WITHOUT_PLACE.values(), ids=WITHOUT_PLACE.keys())
def test_images_without_a_place_are_not_flagged(tmp_path: Path, build: Callable[[], bytes]) -> None:
    path = tmp_path / "photo"
    path.write_bytes(build())
    assert not carries_position(path)


def test_files_that_are_not_images_are_left_to_the_caller(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text(f'exif:GPSLatitude="52,22N" photoshop:City="{VILLAGE}"\n', encoding="utf-8")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    header_only = tmp_path / "cut.jpg"
    header_only.write_bytes(_jpeg(exif=_exif(gps=True))[:40])  # cut inside the EXIF segment
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    for path in (text, empty, header_only, garbage, tmp_path / "missing.jpg"):
        assert not carries_position(path)


def test_an_image_cut_in_its_pixels_still_shows_its_position(tmp_path: Path) -> None:
    data = _jpeg(exif=_exif(gps=True))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:-6])  # the end of its pixel data and its end marker cut
    assert carries_position(path)
    png = tmp_path / "cut.png"
    png.write_bytes(_after_pixels(_png(), b"eXIf", _exif(gps=True))[:-20])  # eXIf, IEND cut
    assert carries_position(png)


def test_metadata_that_cannot_be_examined_counts_as_a_position(tmp_path: Path) -> None:
    prefixes = [(f"e{number}", EXIF_NS) for number in range(40)]  # 40 patterns to build
    many_prefixes = tmp_path / "prefixes.jpg"
    many_prefixes.write_bytes(_jpeg(xmp=_xmp("e1:ExposureTime='1/60'", *prefixes)))
    assert carries_position(many_prefixes)
    damaged_exif = tmp_path / "exif.jpg"
    damaged_exif.write_bytes(_with_segments(_jpeg(), (1, b"Exif\x00\x00XX\x00*" + b"\xff" * 20)))
    damaged_inflate = tmp_path / "xmp.png"
    damaged_inflate.write_bytes(
        _after_pixels(_png(), b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + b"not zlib")
    )
    assert carries_position(damaged_exif)
    assert carries_position(damaged_inflate)


# --------------------------------------------------------------------------- bounded reading


def test_an_xmp_packet_beyond_the_limit_counts_as_a_position_without_being_read(
    tmp_path: Path,
) -> None:
    huge = CLEAN_XMP + b" " * METADATA_LIMIT
    raw = tmp_path / "huge.png"
    raw.write_bytes(_after_pixels(_png(), b"iTXt", _itxt(b"XML:com.adobe.xmp", huge)))
    bomb = tmp_path / "bomb.png"  # ~8 kB that would inflate past the limit
    bomb.write_bytes(
        _after_pixels(_png(), b"iTXt", _itxt(b"XML:com.adobe.xmp", huge, compressed=True))
    )
    for path in (raw, bomb):
        started = time.process_time()  # CPU time: a loaded machine does not make it flaky
        assert carries_position(path)
        assert time.process_time() - started < 1.0


def test_a_hostile_packet_just_under_the_limit_is_searched_in_linear_time(
    tmp_path: Path,
) -> None:
    # unclosed tags, names without values, unfinished bindings: what makes naive patterns
    # backtrack; and a text chunk beyond the limit that is not metadata is skipped unread
    unit = b"<exif:GPSLatitude " + b"exif:GPSLongitude= " * 20 + b"xmlns:a='"
    room = METADATA_LIMIT - len(CLEAN_XMP) - 16
    packet = CLEAN_XMP.replace(b"</rdf:RDF>", (unit * (room // len(unit))) + b"</rdf:RDF>")
    png = _after_pixels(_png(), b"iTXt", _itxt(b"XML:com.adobe.xmp", packet))
    path = tmp_path / "hostile.png"
    path.write_bytes(_after_pixels(png, b"tEXt", b"Comment\x00" + b"x" * METADATA_LIMIT))
    started = time.process_time()  # CPU time: a backtracking pattern would take minutes
    assert not carries_position(path)
    assert time.process_time() - started < 2.0


def test_more_blocks_pages_or_frames_than_the_limits_count_as_a_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(positions, "FRAME_LIMIT", 1)
    tiff = tmp_path / "pages.tiff"
    tiff.write_bytes(_two_page_tiff(_exif(gps=False)))
    mpo = tmp_path / "frames.mpo"
    mpo.write_bytes(_mpo(_exif(gps=False)))
    assert carries_position(tiff)
    assert carries_position(mpo)
    monkeypatch.setattr(positions, "FRAME_LIMIT", 2)
    assert not carries_position(tiff)
    assert not carries_position(mpo)

    monkeypatch.setattr(positions, "BLOCK_LIMIT", 8)
    gif = tmp_path / "many.gif"
    gif.write_bytes(_gif()[:-1] + b"!\xfe" + b"\x01x" * 9 + b"\x00;")  # a comment, 9 blocks
    png = tmp_path / "many.png"
    png.write_bytes(
        _png()[:-12] + _png_chunk(b"tIME", b"\x07\xe9\x01\x01\x00\x00\x00") * 9 + _png()[-12:]
    )
    assert carries_position(gif)
    assert carries_position(png)
    monkeypatch.setattr(positions, "BLOCK_LIMIT", 16)
    assert not carries_position(gif)
    assert not carries_position(png)


# --------------------------------------------------------------------------- renditions


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


RENDERED = {
    name: (media_type, WITH_PLACE[name])
    for name, media_type in [
        ("jpeg-exif-gps", "image/jpeg"),
        ("jpeg-xmp-attributes", "image/jpeg"),
        ("jpeg-extended-xmp", "image/jpeg"),
        ("jpeg-iptc-city", "image/jpeg"),
        ("mpo-second-frame-gps", "image/jpeg"),
        ("png-exif-chunk", "image/png"),
        ("png-xmp-itxt", "image/png"),
        ("png-xmp-compressed-after-pixels", "image/png"),
        ("png-raw-profile-exif", "image/png"),
    ]
}
RENDERED["jpeg-icc"] = ("image/jpeg", lambda: _jpeg(icc_profile=_icc(), xmp=GPS_XMP))
RENDERED["png-icc"] = ("image/png", lambda: _png(icc_profile=_icc(), exif=_exif(gps=True)))


@pytest.mark.parametrize(("media_type", "build"), RENDERED.values(), ids=RENDERED.keys())
def test_the_rendition_from_pixels_carries_no_place_and_no_metadata(
    tmp_path: Path, media_type: str, build: Callable[[], bytes]
) -> None:
    source = tmp_path / "source"
    source.write_bytes(build())
    assert carries_position(source)
    dest = tmp_path / "rendition"
    redact(source, media_type, [], dest)
    assert not carries_position(dest)
    assert metadata_of_image(dest) == []
    data = dest.read_bytes()
    for marker in (b"Exif", b"http://ns.adobe.com", b"Photoshop 3.0", b"8BIM", b"ICC_PROFILE",
                   b"iCCP", b"eXIf", b"tEXt", b"zTXt", b"iTXt", VILLAGE.encode()):  # fmt: skip
        assert marker not in data

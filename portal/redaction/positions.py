"""Whether an image file says where it was made: a GPS position or a named place, anywhere in
its metadata.

An image shared as it is goes out with its metadata; when it carries a place, the assembly
shares a rendition made from its pixels instead (:mod:`portal.redaction.image`), which
carries no metadata at all. So this module only has to answer yes or no, and in doubt it
answers yes: stripping metadata costs nothing that matters, a missed position can name a
witness's home.

Where a place is looked for:

* EXIF — a GPS block (IFD) with anything in it: JPEG and MPO APP1 (every frame), PNG eXIf,
  TIFF (every page), WebP EXIF chunk, and EXIF carried in Photoshop resources or in the
  ``Raw profile type exif`` text chunks ImageMagick writes into PNGs.
* XMP — any ``GPS…`` property of the EXIF namespace (``exif:GPSLatitude``,
  ``exif:GPSLongitude``…), the named places of the Photoshop and IPTC namespaces
  (``photoshop:City``/``State``/``Country``, ``Iptc4xmpCore:Location``/``CountryCode``,
  ``Iptc4xmpExt:LocationShown``/``LocationCreated`` and their parts) and DJI drones'
  ``drone-dji:Gps…``; as attributes or as elements, under whatever prefix the packet binds
  to those namespaces. Read from JPEG APP1 (extended XMP too), PNG iTXt/tEXt/zTXt
  ``XML:com.adobe.xmp``, TIFF tag 700, the WebP XMP chunk, the GIF XMP application
  extension and Photoshop resources.
* IPTC IIM — Content Location, City, Sub-location, Province/State, Country code and name
  (2:26, 2:27, 2:90, 2:92, 2:95, 2:100, 2:101): JPEG APP13, TIFF tags 33723 and 34377.

A named place counts like a position, down to a country: a city or a home village can be
enough to find a witness, and the portal cannot judge how precise a place is.

Reading is bounded: the file is opened with Pillow, which reads headers, never pixels (no
``load()``); PNG chunks and GIF blocks are walked by their declared lengths, skipping pixel
data. One metadata block (an XMP packet, EXIF, IPTC, a text chunk, once decompressed) is
examined up to :data:`METADATA_LIMIT` bytes, pages and frames up to :data:`FRAME_LIMIT`,
PNG chunks and GIF blocks up to :data:`BLOCK_LIMIT`; anything beyond, or metadata that
does not parse, counts as a position (it cannot be shown not to be one). XMP is searched
with regular expressions written to run in linear time, never parsed as XML: no entity is
ever expanded and nothing external is fetched.

A file Pillow cannot open is not judged here (``False``): the caller refuses it elsewhere.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from PIL import GifImagePlugin, Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin
from PIL.ExifTags import IFD

__all__ = ["BLOCK_LIMIT", "FRAME_LIMIT", "METADATA_LIMIT", "carries_position"]

METADATA_LIMIT = 8 << 20  # bytes of one metadata block examined (an XMP packet, decompressed)
FRAME_LIMIT = 256  # TIFF pages, MPO frames
BLOCK_LIMIT = 500_000  # PNG chunks, GIF blocks (pixel data included)


class _CannotTell(Exception):
    """Metadata too large or too damaged to examine: it counts as a position."""


def carries_position(path: Path) -> bool:
    """Whether the image at ``path`` carries a GPS position or a named place in its
    metadata (see the module notes); ``False`` for a file Pillow cannot open."""
    try:
        image = Image.open(path)
    except Exception:  # Pillow raises many kinds for what is not an image it reads
        return False
    with image:
        try:
            return any(_places(image, path))
        except Exception:  # _CannotTell, or what Pillow reads past the header is damaged
            return True


def _places(image: Image.Image, path: Path) -> Iterator[bool]:
    """One answer for each metadata block of the file, in order (``any`` stops early)."""
    if isinstance(image, PngImagePlugin.PngImageFile):
        yield from _png_places(path)
    elif isinstance(image, JpegImagePlugin.JpegImageFile):  # MPO too
        yield from _jpeg_places(image)
    elif isinstance(image, TiffImagePlugin.TiffImageFile):
        yield from _tiff_places(image)
    elif isinstance(image, GifImagePlugin.GifImageFile):
        yield from _gif_places(path)
    else:  # WebP, and whatever else Pillow reads EXIF or XMP from when it opens a file
        yield from _info_places(image.info)


# --- metadata blocks --------------------------------------------------------------------------


def _exif_has_gps(data: bytes) -> bool:
    """Whether EXIF (a TIFF structure, with or without its ``Exif`` header) has a GPS block
    with anything in it."""
    _check_size(len(data))
    exif = Image.Exif()
    exif.load(data)
    return _has_gps_block(exif)


def _has_gps_block(exif: Image.Exif) -> bool:
    """A pointer to a GPS block (even one that cannot be read), or a block with entries."""
    return IFD.GPSInfo in exif or bool(exif.get_ifd(IFD.GPSInfo))


# XMP namespaces and the names of their properties that hold a position or a place.
_XMP_PLACES: dict[bytes, bytes] = {
    b"http://ns.adobe.com/exif/1.0/": rb"GPS[A-Za-z0-9]*+",
    b"http://ns.adobe.com/photoshop/1.0/": rb"City|State|Country",
    b"http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": rb"Location|CountryCode",
    b"http://iptc.org/std/Iptc4xmpExt/2008-02-29/": (
        rb"LocationCreated|LocationShown|City|Sublocation|ProvinceState|CountryName"
        rb"|CountryCode|WorldRegion|GPSLatitude|GPSLongitude"
    ),
    b"http://www.dji.com/drone-dji/1.0/": rb"Gps[A-Za-z0-9]*+",
}
_PREFIX_LIMIT = 32  # prefixes bound to those namespaces in one packet (one each is usual)
_NAME = rb"[^\s<>=:\"'/!?]"  # a character of an XML name (as far as this search needs)
_BINDING = re.compile(
    rb"(?<![^\s<])xmlns(?::(" + _NAME + rb"++))?\s*+=\s*+(?:\"([^\"]{0,200}+)\"|'([^']{0,200}+)')"
)


def _xmp_has_place(data: bytes) -> bool:
    """Whether an XMP packet has a position or place property with a value.

    NUL bytes are dropped first, so UTF-16 and UTF-32 packets read like UTF-8 ones (every
    name searched for is ASCII). A property counts when its attribute value is not blank,
    or when its element is not empty (a structure counts whatever it holds).
    """
    _check_size(len(data))
    packet = data.replace(b"\x00", b"")
    prefixes: dict[bytes, set[bytes]] = defaultdict(set)  # namespace -> prefixes bound to it
    for match in _BINDING.finditer(packet):
        prefixes[match[2] if match[2] is not None else match[3]].add(match[1] or b"")
    if sum(len(prefixes[namespace]) for namespace in _XMP_PLACES) > _PREFIX_LIMIT:
        raise _CannotTell  # a packet made to build an enormous pattern
    searches = [
        _property_pattern(prefix, names)
        for namespace, names in _XMP_PLACES.items()
        for prefix in sorted(prefixes.get(namespace, ()))
    ]
    return bool(searches) and re.search(b"|".join(searches), packet) is not None


def _property_pattern(prefix: bytes, names: bytes) -> bytes:
    """A property ``prefix:name`` with a value: as an attribute (never for the default
    namespace, which attributes do not take) or as an element that is not empty."""
    qualified = (re.escape(prefix) + b":" if prefix else b"") + b"(?:" + names + b")"
    ends = rb"(?!" + _NAME + rb")"
    element = rb"<" + qualified + ends + rb"[^<>]*+(?<!/)>(?!\s*+</)(?=\s*+\S)"
    if not prefix:
        return element
    attribute = rb"(?<=\s)" + qualified + ends + rb"\s*+=\s*+(?:\"\s*+[^\"\s]|'\s*+[^'\s])"
    return element + b"|" + attribute


# IPTC IIM datasets of a place: Content Location code and name, City, Sub-location,
# Province/State, Country code and name.
_IPTC_PLACES = frozenset({(2, 26), (2, 27), (2, 90), (2, 92), (2, 95), (2, 100), (2, 101)})


def _iptc_has_place(data: bytes) -> bool:
    """Whether IPTC IIM data has a place dataset that is not blank. Bytes between datasets
    are skipped to the next tag marker, so padding or junk hides nothing."""
    _check_size(len(data))
    offset = data.find(b"\x1c")
    while offset >= 0 and offset + 5 <= len(data):
        record, dataset, length = struct.unpack_from(">BBH", data, offset + 1)
        start = offset + 5
        if length & 0x8000:  # extended dataset: the length's own length, then the length
            size = length & 0x7FFF
            length = int.from_bytes(data[start : start + size], "big")
            start += size
        value = data[start : start + length]
        if (record, dataset) in _IPTC_PLACES and value.strip(b" \t\r\n\x00"):
            return True
        offset = data.find(b"\x1c", start + length)
    return False


_IRB_SIGNATURES = (b"8BIM", b"MeSa", b"PHUT", b"AgHg", b"DCSR")
_IRB_IPTC, _IRB_EXIF, _IRB_EXIF_3, _IRB_XMP = 0x0404, 0x0422, 0x0423, 0x0424


def _irb_places(data: bytes) -> Iterator[bool]:
    """Photoshop image resources: the IPTC, EXIF and XMP ones among them."""
    _check_size(len(data))
    offset = 0
    while offset + 12 <= len(data) and data[offset : offset + 4] in _IRB_SIGNATURES:
        (resource,) = struct.unpack_from(">H", data, offset + 4)
        offset += 7 + data[offset + 6]  # signature, id, name (a Pascal string)
        offset += offset & 1  # padded to an even length
        if offset + 4 > len(data):
            return
        (size,) = struct.unpack_from(">I", data, offset)
        block = data[offset + 4 : offset + 4 + size]
        offset += 4 + size + (size & 1)
        if resource == _IRB_IPTC:
            yield _iptc_has_place(block)
        elif resource in (_IRB_EXIF, _IRB_EXIF_3):
            yield _exif_has_gps(block)
        elif resource == _IRB_XMP:
            yield _xmp_has_place(block)


def _iptc_places(data: bytes) -> Iterator[bool]:
    """IPTC as a TIFF tag or a raw profile holds it: IIM, or Photoshop resources around it."""
    if data.startswith(_IRB_SIGNATURES):
        yield from _irb_places(data)
    else:
        yield _iptc_has_place(data)


def _profile_places(data: bytes) -> Iterator[bool]:
    """A metadata block known only by its content: EXIF, Photoshop resources, IPTC IIM or,
    failing those, XMP."""
    if data.startswith((b"Exif\x00\x00", b"II*\x00", b"MM\x00*")):
        yield _exif_has_gps(data)
    elif data.startswith((*_IRB_SIGNATURES, b"\x1c")):
        yield from _iptc_places(data)
    else:
        yield _xmp_has_place(data)


def _info_places(info: Mapping[str | tuple[int, int], object]) -> Iterator[bool]:
    """The EXIF and XMP that Pillow read when it opened the file."""
    exif, xmp = info.get("exif"), info.get("xmp")
    if isinstance(exif, bytes) and exif:
        yield _exif_has_gps(exif)
    if isinstance(xmp, str):
        xmp = xmp.encode()
    if isinstance(xmp, bytes) and xmp:
        yield _xmp_has_place(xmp)


def _check_size(size: int) -> None:
    if size > METADATA_LIMIT:
        raise _CannotTell


# --- formats ----------------------------------------------------------------------------------

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"  # then GUID, length, offset
_PHOTOSHOP = b"Photoshop 3.0\x00"


def _jpeg_places(image: JpegImagePlugin.JpegImageFile) -> Iterator[bool]:
    """Every frame's header segments (an MPO holds several JPEGs; Pillow reads each
    frame's segments when it seeks to it, up to the frame's pixel data)."""
    frames = getattr(image, "n_frames", 1)
    if frames > FRAME_LIMIT:
        raise _CannotTell
    for frame in range(frames):
        if frame:
            image.seek(frame)
        yield from _jpeg_segment_places(image.applist)


def _jpeg_segment_places(segments: Iterable[tuple[str, bytes]]) -> Iterator[bool]:
    """EXIF, XMP (standard and extended) and Photoshop resources of one frame's segments."""
    exif: list[bytes] = []
    extended: dict[bytes, list[tuple[int, bytes]]] = defaultdict(list)  # GUID -> pieces
    photoshop: list[bytes] = []
    for marker, data in segments:
        if marker == "APP1" and data.startswith(b"Exif\x00\x00"):
            exif.append(data)
            yield _exif_has_gps(data)
        elif marker == "APP1" and data.startswith(_XMP_HEADER):
            yield _xmp_has_place(data[len(_XMP_HEADER) :])
        elif marker == "APP1" and data.startswith(_XMP_EXTENSION):
            start = len(_XMP_EXTENSION)
            (offset,) = struct.unpack_from(">I", data, start + 36)
            extended[data[start : start + 32]].append((offset, data[start + 40 :]))
        elif marker == "APP13" and data.startswith(_PHOTOSHOP):
            photoshop.append(data[len(_PHOTOSHOP) :])
    if len(exif) > 1:  # EXIF split over segments, as Pillow reads it
        yield _exif_has_gps(exif[0] + b"".join(data[6:] for data in exif[1:]))
    for pieces in extended.values():
        _check_size(sum(len(piece) for _, piece in pieces))
        yield _xmp_has_place(b"".join(piece for _, piece in sorted(pieces)))
    if photoshop:  # resources may run on from one segment to the next
        yield from _irb_places(b"".join(photoshop))


_TIFF_XMP, _TIFF_IPTC, _TIFF_PHOTOSHOP = 700, 33723, 34377


def _tiff_places(image: TiffImagePlugin.TiffImageFile) -> Iterator[bool]:
    """Every page: its EXIF GPS block, and its XMP, IPTC and Photoshop tags as stored
    (Pillow's raw tag data, as its own IPTC reader uses: IPTC is often typed as LONGs)."""
    for page in range(FRAME_LIMIT + 1):
        if page:
            try:
                image.seek(page)
            except EOFError:
                return
        if page == FRAME_LIMIT:
            raise _CannotTell
        yield _has_gps_block(image.getexif())
        raw = image.tag_v2._tagdata
        if xmp := raw.get(_TIFF_XMP):
            yield _xmp_has_place(xmp)
        if iptc := raw.get(_TIFF_IPTC):
            yield from _iptc_places(iptc)
        if photoshop := raw.get(_TIFF_PHOTOSHOP):
            yield from _irb_places(photoshop)


_PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_XMP_KEY = b"XML:com.adobe.xmp"
_PNG_PROFILE_KEY = b"Raw profile type "  # ImageMagick: EXIF, XMP, IPTC... in hexadecimal


def _png_places(path: Path) -> Iterator[bool]:
    """Every chunk, also those after the pixel data (which Pillow reads only when it
    decodes the pixels): eXIf, and the text chunks keyed as XMP or as raw profiles."""
    with path.open("rb") as handle:
        handle.seek(8)  # the signature, checked by Pillow
        for kind, body in _png_metadata_chunks(handle):
            if kind == b"eXIf":
                yield _exif_has_gps(body)
            else:
                yield from _png_text_places(kind, body)


def _png_metadata_chunks(handle: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    for _ in range(BLOCK_LIMIT):
        header = handle.read(8)
        if len(header) < 8:
            return
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return
        head = handle.read(min(length, 80)) if kind in _PNG_TEXT else b""  # the keyword
        if kind == b"eXIf" or _png_metadata_key(head):
            _check_size(length)
            yield kind, head + handle.read(length - len(head))
            handle.seek(4, 1)  # CRC
        else:
            handle.seek(length - len(head) + 4, 1)
    raise _CannotTell


def _png_metadata_key(head: bytes) -> bool:
    key = head.partition(b"\x00")[0]
    return key == _PNG_XMP_KEY or key.startswith(_PNG_PROFILE_KEY)


def _png_text_places(kind: bytes, body: bytes) -> Iterator[bool]:
    key, _, rest = body.partition(b"\x00")
    text = _png_text(kind, rest)
    if key == _PNG_XMP_KEY:
        yield _xmp_has_place(text)
        return
    try:  # "\n<type>\n<length>\n<hexadecimal, in lines>"
        profile = bytes.fromhex(b"".join(text.split()[2:]).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise _CannotTell from None
    yield from _profile_places(profile)


def _png_text(kind: bytes, rest: bytes) -> bytes:
    """The text of a text chunk after its keyword, decompressed when it is compressed."""
    if kind == b"tEXt":
        return rest
    if kind == b"zTXt":
        return _inflate(rest[1:])
    compressed = rest[:1] == b"\x01"
    _language, _, rest = rest[2:].partition(b"\x00")
    _translated_key, _, text = rest.partition(b"\x00")
    return _inflate(text) if compressed else text


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, METADATA_LIMIT)
    except zlib.error:
        raise _CannotTell from None
    if inflater.unconsumed_tail:
        raise _CannotTell
    return text


_GIF_XMP = b"XMP DataXMP"


def _gif_places(path: Path) -> Iterator[bool]:
    """The XMP application extensions, wherever they sit among the frames."""
    with path.open("rb") as handle:
        for packet in _GifBlocks(handle).xmp_packets():
            yield _xmp_has_place(packet)


class _GifBlocks:
    """A walk over a GIF's blocks by their declared sizes, every block and sub-block
    counted against :data:`BLOCK_LIMIT`."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.left = BLOCK_LIMIT

    def xmp_packets(self) -> Iterator[bytes]:
        """Each XMP packet, read as it lies in the file: it is stored raw, a "magic
        trailer" after it making it read as sub-blocks."""
        handle = self.handle
        screen = handle.read(13)
        if screen[10] & 0x80:  # global colour table
            handle.seek(3 << ((screen[10] & 7) + 1), 1)
        while (introducer := handle.read(1)) in (b"!", b","):
            self._count()
            if introducer == b",":
                self._skip_image()
                continue
            label, size = handle.read(1), handle.read(1)
            if not size or size == b"\x00":  # no data: the terminator already
                continue
            first = handle.read(size[0])
            start = handle.tell()
            self._skip_sub_blocks()
            if label == b"\xff" and first == _GIF_XMP:
                end = handle.tell()
                _check_size(end - start)
                handle.seek(start)
                yield handle.read(end - start)

    def _skip_image(self) -> None:
        descriptor = self.handle.read(9)
        if len(descriptor) == 9 and descriptor[8] & 0x80:  # local colour table
            self.handle.seek(3 << ((descriptor[8] & 7) + 1), 1)
        self.handle.seek(1, 1)  # LZW code size
        self._skip_sub_blocks()

    def _skip_sub_blocks(self) -> None:
        """Past a chain of sub-blocks, to after its terminator (or the end of the file)."""
        while (size := self.handle.read(1)) and size != b"\x00":
            self._count()
            self.handle.seek(size[0], 1)

    def _count(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _CannotTell

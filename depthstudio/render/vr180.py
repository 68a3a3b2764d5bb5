"""VR180 metadata, written by hand: Google's VR180 photo XMP for JPEGs, spherical video boxes for MP4.

Photos (``write_vr180_photo``):
- ``<stem>_vr180_LR.jpg``: both eyes side by side, each a 180 x 180 degree equirectangular picture
  (players such as DeoVR, Skybox or the Quest's own read the layout from the "_LR" / "180" name);
- ``<stem>_vr180.vr.jpg``: Google's VR180 photo format: the left eye is the JPEG's picture, with
  GPano XMP saying it is the middle half of an equirectangular panorama (180 of 360 degrees
  across, 180 down), and the right eye is a JPEG inside the extended XMP (``GImage:Data``,
  base64), split over as many APP1 segments as it needs (Adobe XMP part 3, "extended XMP").

Videos (``add_spherical_boxes``): the Spherical Video V2 boxes in the video track's sample entry:
``st3d`` (stereo mode: left-right) and ``sv3d`` (``svhd`` + ``proj`` with ``prhd`` and an ``equi``
projection whose left and right bounds crop a quarter each, so 180 of 360 degrees). PyAV cannot
set these, so the finished MP4 is rewritten with the boxes added and its chunk offsets moved.

``read_vr180_photo`` and ``read_spherical_boxes`` parse them back (the tests use them).
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from depthstudio.errors import InputError, OutputError

XMP_NS = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXT_NS = b"http://ns.adobe.com/xmp/extension/\x00"
GPANO = "http://ns.google.com/photos/1.0/panorama/"
GIMAGE = "http://ns.google.com/photos/1.0/image/"
XMPNOTE = "http://ns.adobe.com/xmp/note/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#: An APP1 segment holds at most 65533 bytes after its length field.
_MAX_SEGMENT = 65533
_EXT_CHUNK = _MAX_SEGMENT - len(XMP_EXT_NS) - 32 - 8


# -- photos ---------------------------------------------------------------------------------------
def _jpeg_bytes(image: np.ndarray, quality: float) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    q = int(round(min(max(float(quality), 1.0), 100.0)))
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=min(q, 95), subsampling=0 if q >= 90 else 2)
    return buffer.getvalue()


def _xmp_packet(body: str) -> str:
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="' + RDF + '">' + body + '</rdf:RDF></x:xmpmeta>')


def vr180_xmp(side: int, right_jpeg: bytes) -> tuple[bytes, bytes, str]:
    """(standard XMP, extended XMP, its GUID) for a left eye of ``side`` x ``side`` pixels."""
    extended = _xmp_packet(
        f'<rdf:Description rdf:about="" xmlns:GImage="{GIMAGE}" GImage:Mime="image/jpeg" '
        f'GImage:Data="{base64.b64encode(right_jpeg).decode("ascii")}"/>').encode("utf-8")
    guid = hashlib.md5(extended).hexdigest().upper()
    standard = _xmp_packet(
        f'<rdf:Description rdf:about="" xmlns:GPano="{GPANO}" xmlns:xmpNote="{XMPNOTE}" '
        f'GPano:ProjectionType="equirectangular" GPano:UsePanoramaViewer="True" '
        f'GPano:CroppedAreaImageWidthPixels="{side}" GPano:CroppedAreaImageHeightPixels="{side}" '
        f'GPano:FullPanoWidthPixels="{2 * side}" GPano:FullPanoHeightPixels="{side}" '
        f'GPano:CroppedAreaLeftPixels="{side // 2}" GPano:CroppedAreaTopPixels="0" '
        f'GPano:PoseHeadingDegrees="0" GPano:InitialViewHeadingDegrees="0" '
        f'GPano:CaptureSoftware="DepthStudio" xmpNote:HasExtendedXMP="{guid}"/>').encode("utf-8")
    return standard, extended, guid


def _segment(payload: bytes) -> bytes:
    if len(payload) > _MAX_SEGMENT:
        raise OutputError(f"an XMP segment of {len(payload)} bytes does not fit in a JPEG APP1 segment")
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def insert_xmp(jpeg: bytes, standard: bytes, extended: bytes | None = None, guid: str | None = None) -> bytes:
    """The JPEG with XMP APP1 segments added after its SOI / APP0 segments."""
    if jpeg[:2] != b"\xff\xd8":
        raise OutputError("not a JPEG stream")
    segments = [_segment(XMP_NS + standard)]
    if extended is not None:
        if guid is None:
            raise OutputError("extended XMP needs its GUID")
        total = len(extended)
        for offset in range(0, total, _EXT_CHUNK):
            chunk = extended[offset:offset + _EXT_CHUNK]
            segments.append(_segment(XMP_EXT_NS + guid.encode("ascii") + struct.pack(">II", total, offset) + chunk))
    pos = 2
    while jpeg[pos:pos + 2] == b"\xff\xe0":  # keep JFIF first
        pos += 2 + struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
    return jpeg[:pos] + b"".join(segments) + jpeg[pos:]


def write_vr180_photo(sbs_path, vr_path, left: np.ndarray, right: np.ndarray, quality: float = 90) -> list[Path]:
    """Write the side-by-side JPEG and Google's VR180 photo (see the module docstring); atomic."""
    from depthstudio.io.atomic import write_bytes

    if left.shape != right.shape or left.shape[0] != left.shape[1]:
        raise OutputError(f"VR180 eyes must be square and of one size, got {left.shape} and {right.shape}")
    side = int(left.shape[0])
    sbs = _jpeg_bytes(np.concatenate([left, right], axis=1), quality)
    standard, extended, guid = vr180_xmp(side, _jpeg_bytes(right, quality))
    vr = insert_xmp(_jpeg_bytes(left, quality), standard, extended, guid)
    return [write_bytes(sbs_path, sbs), write_bytes(vr_path, vr)]


def _app1_payloads(data: bytes) -> list[bytes]:
    if data[:2] != b"\xff\xd8":
        raise InputError("not a JPEG file")
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xE1:
            out.append(data[pos + 4:pos + 2 + length])
        pos += 2 + length
    return out


def _description(xml: bytes) -> dict[str, str]:
    root = ET.fromstring(xml)
    desc = root.find(f".//{{{RDF}}}Description")
    if desc is None:
        raise InputError("XMP without an rdf:Description")
    return dict(desc.attrib)


def read_vr180_photo(path) -> dict:
    """{"gpano": {...}, "right": JPEG bytes of the right eye, "guid": str} from a VR180 photo."""
    data = Path(path).read_bytes()
    standard = None
    chunks: dict[str, list] = {}
    for payload in _app1_payloads(data):
        if payload.startswith(XMP_NS):
            standard = _description(payload[len(XMP_NS):])
        elif payload.startswith(XMP_EXT_NS):
            rest = payload[len(XMP_EXT_NS):]
            guid = rest[:32].decode("ascii")
            total, offset = struct.unpack(">II", rest[32:40])
            chunks.setdefault(guid, [total, {}])[1][offset] = rest[40:]
    if standard is None:
        raise InputError(f"{path}: no XMP")
    gpano = {key.split("}")[1]: value for key, value in standard.items() if key.startswith(f"{{{GPANO}}}")}
    guid_expected = standard.get(f"{{{XMPNOTE}}}HasExtendedXMP")
    if guid_expected not in chunks:
        raise InputError(f"{path}: the extended XMP {guid_expected} is missing")
    total, parts = chunks[guid_expected]
    extended = b"".join(parts[k] for k in sorted(parts))
    if len(extended) != total or hashlib.md5(extended).hexdigest().upper() != guid_expected:
        raise InputError(f"{path}: the extended XMP is incomplete or does not match its GUID")
    ext = _description(extended)
    right = base64.b64decode(ext[f"{{{GIMAGE}}}Data"])
    return {"gpano": gpano, "mime": ext.get(f"{{{GIMAGE}}}Mime"), "right": right, "guid": guid_expected}


# -- video boxes ----------------------------------------------------------------------------------
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"sv3d", b"proj"}
#: Visual sample entries the boxes go into (their children start after 78 bytes of fields).
_VISUAL = {b"avc1", b"avc3", b"hvc1", b"hev1", b"vp09", b"av01", b"mp4v"}


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def spherical_boxes(stereo_mode: int = 2, fov_deg: float = 180.0) -> bytes:
    """st3d + sv3d for an equirectangular picture covering ``fov_deg`` across and 180 down.

    stereo_mode: 0 mono, 1 top-bottom, 2 left-right. Bounds are 0.32 fixed-point fractions cropped
    from each side of the full 360 x 180 sphere.
    """
    st3d = _full_box(b"st3d", struct.pack(">B", stereo_mode))
    svhd = _full_box(b"svhd", b"DepthStudio\x00")
    prhd = _full_box(b"prhd", struct.pack(">iii", 0, 0, 0))
    side = int(round((1.0 - fov_deg / 360.0) / 2.0 * 2**32))
    equi = _full_box(b"equi", struct.pack(">IIII", 0, 0, side, side))
    sv3d = _box(b"sv3d", svhd + _box(b"proj", prhd + equi))
    return st3d + sv3d


def _children(data: bytes | bytearray, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise InputError(f"broken MP4 box {kind!r} at {pos}")
        yield kind, pos, header, size
        pos += size


def _is_video_trak(moov: bytes, start: int, end: int) -> bool:
    for kind, pos, header, size in _children(moov, start, end):
        if kind == b"mdia":
            for k2, p2, h2, _ in _children(moov, pos + header, pos + size):
                if k2 == b"hdlr":
                    return moov[p2 + h2 + 8:p2 + h2 + 12] == b"vide"
    return False


def _patch_moov(moov: bytes, extra: bytes) -> tuple[bytes, int]:
    """The moov box with ``extra`` appended to the video track's sample entries; bytes added."""
    edits: list[tuple[int, list[int]]] = []  # (insert position, [start of every enclosing box])

    def walk(start: int, end: int, parents: list[int], video: bool) -> None:
        for kind, pos, header, size in _children(moov, start, end):
            if kind == b"trak":
                walk(pos + header, pos + size, parents + [pos], _is_video_trak(moov, pos + header, pos + size))
            elif kind in _CONTAINERS and kind != b"trak":
                walk(pos + header, pos + size, parents + [pos], video)
            elif kind == b"stsd" and video:
                count = struct.unpack(">I", moov[pos + header + 4:pos + header + 8])[0]
                entries = list(_children(moov, pos + header + 8, pos + size))[:count]
                for k2, p2, _, s2 in entries:
                    if k2 in _VISUAL:
                        edits.append((p2 + s2, parents + [pos, p2]))

    walk(8, len(moov), [0], False)
    if not edits:
        raise OutputError("the MP4 has no video track to mark as VR180")
    out = bytearray(moov)
    for insert_at, boxes in sorted(edits, reverse=True):
        out[insert_at:insert_at] = extra
        for start in boxes:
            size = struct.unpack(">I", out[start:start + 4])[0]
            if size == 1:
                raise OutputError("64-bit box sizes inside moov are not supported")
            struct.pack_into(">I", out, start, size + len(extra))
    return bytes(out), len(extra) * len(edits)


def _shift_chunk_offsets(moov: bytearray, delta: int) -> None:
    def walk(start: int, end: int) -> None:
        for kind, pos, header, size in _children(moov, start, end):
            if kind in _CONTAINERS:
                walk(pos + header, pos + size)
            elif kind in (b"stco", b"co64"):
                body = pos + header + 4
                count = struct.unpack(">I", moov[body:body + 4])[0]
                fmt = ">I" if kind == b"stco" else ">Q"
                step = 4 if kind == b"stco" else 8
                for i in range(count):
                    at = body + 4 + i * step
                    value = struct.unpack(fmt, moov[at:at + step])[0] + delta
                    if kind == b"stco" and value >= 2**32:
                        raise OutputError("the MP4 grew past 4 GB offsets; cannot add VR180 metadata")
                    struct.pack_into(fmt, moov, at, value)

    walk(8, len(moov))


def add_spherical_boxes(path, stereo_mode: int = 2, fov_deg: float = 180.0) -> Path:
    """Rewrite the MP4 / MOV at ``path`` (atomically) with st3d + sv3d in its video sample entry."""
    from depthstudio.io.atomic import atomic_path

    path = Path(path)
    size = path.stat().st_size
    top: list[tuple[bytes, int, int]] = []
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                break
            box, kind = struct.unpack(">I4s", head[:8])
            if box == 1:
                box = struct.unpack(">Q", head[8:16])[0]
            elif box == 0:
                box = size - pos
            if box < 8:
                raise InputError(f"{path}: broken MP4 box {kind!r} at {pos}")
            top.append((kind, pos, box))
            pos += box
        moov_entry = next((t for t in top if t[0] == b"moov"), None)
        if moov_entry is None:
            raise InputError(f"{path}: no moov box; not an MP4 / MOV file")
        f.seek(moov_entry[1])
        moov = f.read(moov_entry[2])
        grown, delta = _patch_moov(moov, spherical_boxes(stereo_mode, fov_deg))
        patched = bytearray(grown)
        struct.pack_into(">I", patched, 0, len(patched))
        if any(kind == b"mdat" and start > moov_entry[1] for kind, start, _ in top):
            _shift_chunk_offsets(patched, delta)  # media data after moov moves by what moov grew
        with atomic_path(path) as tmp, open(tmp, "wb") as out:
            for kind, start, length in top:
                if kind == b"moov":
                    out.write(patched)
                    continue
                f.seek(start)
                remaining = length
                while remaining:
                    chunk = f.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise InputError(f"{path}: truncated MP4")
                    out.write(chunk)
                    remaining -= len(chunk)
            out.flush()
            os.fsync(out.fileno())
    return path


def read_spherical_boxes(path) -> dict:
    """{"stereo_mode", "projection", "bounds": (top, bottom, left, right) as fractions, "source"} of
    the video track; empty when the file has none."""
    data = Path(path).read_bytes()
    found: dict = {}

    def walk(start: int, end: int) -> None:
        for kind, pos, header, size in _children(data, start, end):
            body = pos + header
            if kind in _CONTAINERS:
                walk(body, pos + size)
            elif kind == b"stsd":
                walk(body + 8, pos + size)
            elif kind in _VISUAL:
                walk(body + 78, pos + size)
            elif kind == b"st3d":
                found["stereo_mode"] = data[body + 4]
            elif kind == b"svhd":
                found["source"] = data[body + 4:pos + size].rstrip(b"\x00").decode("utf-8", "replace")
            elif kind == b"prhd":
                found["pose"] = struct.unpack(">iii", data[body + 4:body + 16])
            elif kind == b"equi":
                found["projection"] = "equirectangular"
                found["bounds"] = tuple(v / 2**32 for v in struct.unpack(">IIII", data[body + 4:body + 20]))

    top_end = len(data)
    for kind, pos, header, size in _children(data, 0, top_end):
        if kind == b"moov":
            walk(pos + header, pos + size)
    return found


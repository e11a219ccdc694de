"""restorer_app.imaging: reading, writing, metadata, atomicity and refusals."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, PngImagePlugin

from restorer_app.imaging import ImageError, ScanImage, read_image, read_mask, write_image
from restorer_app.imaging import io as imaging_io

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:source>Box 12, folder 3</dc:source>'
       b'</rdf:Description></rdf:RDF></x:xmpmeta>')
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
HISTORY = {"action": "edited", "when": "2024-05-01T12:00:00Z", "software": "Flow Restorer test",
           "parameters": "preset=fast"}


def exif_block() -> bytes:
    exif = Image.Exif()
    exif[271] = "ScanCo"
    exif[306] = "2020:01:02 03:04:05"
    exif[0x8769] = {0x9003: "1950:06:07 08:09:10"}
    return exif.tobytes()[6:]  # without the "Exif\0\0" prefix


def check_exif(data: bytes | None) -> None:
    exif = Image.Exif()
    exif.load(data)
    assert exif[271] == "ScanCo"
    assert exif[306] == "2020:01:02 03:04:05"
    assert exif.get_ifd(0x8769)[0x9003] == "1950:06:07 08:09:10"


def samples(bit_depth: int, channels: int, h: int = 6, w: int = 9, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = 255 if bit_depth == 8 else 65535
    data = rng.integers(0, top + 1, (h, w, channels), dtype=np.uint16 if bit_depth == 16 else np.uint8)
    data[0, 0], data[0, 1] = 0, top  # the extremes must survive
    return data


def scan_of(ints: np.ndarray, xmp: bytes | None = XMP) -> ScanImage:
    """An in-memory scan as if read from a file with full metadata."""
    top = np.iinfo(ints.dtype).max
    colour = 1 if ints.shape[2] in (1, 2) else 3
    alpha = ints[:, :, colour] / top if ints.shape[2] in (2, 4) else None
    return ScanImage(path=None, pixels=(ints[:, :, :colour] / top).astype(np.float32),
                     alpha=None if alpha is None else alpha.astype(np.float32),
                     bit_depth=8 if ints.dtype == np.uint8 else 16, icc_profile=ICC,
                     exif=exif_block(), xmp=xmp, dpi=(300.0, 300.0), format="PNG")


def ints_of(scan: ScanImage) -> np.ndarray:
    top = 255 if scan.bit_depth == 8 else 65535
    planes = [scan.pixels] + ([scan.alpha[:, :, None]] if scan.alpha is not None else [])
    return np.rint(np.concatenate(planes, axis=2) * top).astype(np.uint8 if top == 255 else np.uint16)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_image_error(path, fragment: str, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as info:
        read_image(path, **kwargs)
    assert str(info.value).startswith(str(path))
    assert fragment.lower() in info.value.why.lower()
    assert "\n" not in str(info.value)
    return info.value


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_lossless_round_trip_keeps_pixels_and_metadata(tmp_path, ext, bit_depth, channels):
    ints = samples(bit_depth, channels)
    first = tmp_path / f"first{ext}"
    write_image(first, scan_of(ints).pixels, scan_of(ints))
    scan = read_image(first)
    assert scan.format == ("PNG" if ext == ".png" else "TIFF")
    assert scan.bit_depth == bit_depth
    assert scan.pixels.dtype == np.float32 and scan.pixels.shape == (6, 9, 1 if channels < 3 else 3)
    assert (scan.alpha is not None) == (channels in (2, 4))
    assert scan.pixels.min() >= 0 and scan.pixels.max() <= 1
    np.testing.assert_array_equal(ints_of(scan), ints)
    assert scan.icc_profile == ICC
    check_exif(scan.exif)
    assert b"Box 12, folder 3" in scan.xmp
    assert scan.dpi == pytest.approx((300, 300))

    before = sha(first)
    second = tmp_path / f"second{ext}"
    write_image(second, scan.pixels, scan)  # write what was read
    assert sha(first) == before
    again = read_image(second)
    np.testing.assert_array_equal(ints_of(again), ints)
    assert again.bit_depth == bit_depth and again.icc_profile == ICC
    check_exif(again.exif)


@pytest.mark.parametrize("channels", [1, 4])
def test_banded_write_gives_the_same_levels(tmp_path, monkeypatch, channels):
    # large scans are converted to integers band by band: bands must not change a level
    from restorer_app.imaging import io

    ints = samples(16, channels, h=11, w=5, seed=3)
    monkeypatch.setattr(io, "BAND_ROWS", 4)
    write_image(tmp_path / "banded.tif", scan_of(ints).pixels, scan_of(ints))
    np.testing.assert_array_equal(ints_of(read_image(tmp_path / "banded.tif")), ints)
    bad = scan_of(ints).pixels.copy()
    bad[9, 2] = np.nan  # in the last band
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "bad.tif", bad, scan_of(ints))


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_keeps_metadata(tmp_path, channels):
    ints = np.full((16, 16, channels), 128, np.uint8)
    out = tmp_path / "out.jpg"
    write_image(out, scan_of(ints).pixels, scan_of(ints))
    scan = read_image(out)
    assert scan.format == "JPEG" and scan.bit_depth == 8 and scan.pixels.shape[2] == channels
    assert np.abs(ints_of(scan).astype(int) - 128).max() <= 2
    assert scan.icc_profile == ICC
    check_exif(scan.exif)
    assert b"Box 12, folder 3" in scan.xmp
    assert scan.dpi == (300, 300)


def test_16_bit_to_jpeg_is_written_in_8_bits(tmp_path):
    scan = scan_of(samples(16, 3, 16, 16))
    write_image(tmp_path / "out.jpeg", scan.pixels, scan)
    assert read_image(tmp_path / "out.jpeg").bit_depth == 8


def test_jpeg_refuses_alpha(tmp_path):
    scan = scan_of(samples(8, 4))
    with pytest.raises(ImageError, match="alpha"):
        write_image(tmp_path / "out.jpg", scan.pixels, scan)
    assert list(tmp_path.iterdir()) == []


def test_reads_files_from_other_writers(tmp_path):
    ints = samples(8, 3)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    Image.fromarray(ints).save(tmp_path / "pil.png", pnginfo=info, icc_profile=ICC,
                               exif=b"Exif\0\0" + exif_block(), dpi=(600, 600))
    scan = read_image(tmp_path / "pil.png")
    np.testing.assert_array_equal(ints_of(scan), ints)
    assert scan.icc_profile == ICC and b"Box 12" in scan.xmp and scan.dpi == (600, 600)
    check_exif(scan.exif)

    grey16 = samples(16, 1)[:, :, 0]
    tifffile.imwrite(tmp_path / "planar.tif", np.stack([grey16] * 3), photometric="rgb",
                     planarconfig="separate", resolution=(120, 120), resolutionunit="centimeter",
                     extratags=[(700, "B", len(XMP), XMP, True)])
    scan = read_image(tmp_path / "planar.tif")
    assert scan.bit_depth == 16 and scan.dpi == pytest.approx((304.8, 304.8))
    np.testing.assert_array_equal(ints_of(scan)[:, :, 2], grey16)
    assert scan.xmp == XMP


def test_written_metadata_is_seen_by_other_readers(tmp_path):
    scan = scan_of(samples(16, 3))
    write_image(tmp_path / "out.png", scan.pixels, scan)
    with Image.open(tmp_path / "out.png") as im:
        im.load()
        assert im.info["icc_profile"] == ICC and b"Box 12" in im.info["xmp"]
        assert im.getexif()[271] == "ScanCo"
    write_image(tmp_path / "out.tif", scan.pixels, scan)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        tags = tif.pages[0].tags
        assert tags["InterColorProfile"].value == ICC
        assert tags["Make"].value == "ScanCo"
        assert tags["ExifTag"].value["DateTimeOriginal"] == "1950:06:07 08:09:10"
        assert tif.pages[0].bitspersample == 16


def test_palette_png_with_transparency_reads_as_rgba(tmp_path):
    im = Image.new("P", (4, 3), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.save(tmp_path / "p.png", transparency=0)
    scan = read_image(tmp_path / "p.png")
    assert scan.pixels.shape == (3, 4, 3) and scan.alpha is not None
    assert scan.pixels[0, 0].tolist() == [1, 0, 0] and scan.alpha[0, 0] == 1


def test_rounding_and_clipping(tmp_path):
    scan = scan_of(np.zeros((1, 4, 1), np.uint8))
    pixels = np.array([[-0.5, 0.5 / 255 + 1e-4, 254.4 / 255, 1.7]], np.float32)[:, :, None]
    write_image(tmp_path / "r.png", pixels, scan)
    assert ints_of(read_image(tmp_path / "r.png")).ravel().tolist() == [0, 1, 254, 255]


def test_xmp_history_appended_keeping_existing_xmp(tmp_path):
    scan = scan_of(samples(8, 3))
    for ext in (".png", ".tif", ".jpg"):
        write_image(tmp_path / f"h{ext}", scan.pixels, scan, xmp_history=HISTORY)
        xmp = read_image(tmp_path / f"h{ext}").xmp.decode()
        assert "Box 12, folder 3" in xmp
        assert "<stEvt:action>edited</stEvt:action>" in xmp
        assert "<stEvt:softwareAgent>Flow Restorer test</stEvt:softwareAgent>" in xmp
    once = read_image(tmp_path / "h.png")
    write_image(tmp_path / "h2.png", once.pixels, once, xmp_history=HISTORY)
    assert read_image(tmp_path / "h2.png").xmp.decode().count("<stEvt:action>") == 2
    bare = scan_of(samples(8, 1), xmp=None)
    write_image(tmp_path / "new.png", bare.pixels, bare, xmp_history=HISTORY)
    assert "xmpMM:History" in read_image(tmp_path / "new.png").xmp.decode()


def test_input_bytes_unchanged_by_read_and_write(tmp_path):
    scan = scan_of(samples(16, 4))
    src = tmp_path / "src.tif"
    write_image(src, scan.pixels, scan)
    before = sha(src)
    scan = read_image(src)
    write_image(tmp_path / "out.tif", scan.pixels * 0.5, scan, xmp_history=HISTORY)
    write_image(tmp_path / "out.png", scan.pixels, scan)
    assert sha(src) == before


# ---------------------------------------------------------------- writing safely

def test_refuses_output_equal_to_input(tmp_path):
    scan = scan_of(samples(8, 3))
    src = tmp_path / "src.png"
    write_image(src, scan.pixels, scan)
    scan = read_image(src)
    before = sha(src)
    (tmp_path / "link.png").symlink_to(src)
    os.link(src, tmp_path / "hard.png")
    for target in (src, tmp_path / "." / "src.png", tmp_path / "link.png", tmp_path / "hard.png"):
        with pytest.raises(ImageError, match="input"):
            write_image(target, scan.pixels, scan, overwrite=True)
    assert sha(src) == before


def test_refuses_to_overwrite_unless_asked(tmp_path):
    scan = scan_of(samples(8, 3))
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    with pytest.raises(ImageError, match="already exists"):
        write_image(out, scan.pixels, scan)
    assert out.read_bytes() == b"keep me"
    write_image(out, scan.pixels, scan, overwrite=True)
    np.testing.assert_array_equal(ints_of(read_image(out)), samples(8, 3))


def test_unknown_output_extension(tmp_path):
    scan = scan_of(samples(8, 3))
    with pytest.raises(ImageError, match=".bmp"):
        write_image(tmp_path / "out.bmp", scan.pixels, scan)


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_no_partial_output_or_temp_file(tmp_path, monkeypatch, existing):
    def broken_writer(f, raster):
        f.write(b"\x89PNG half of a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(imaging_io._WRITERS, "PNG", broken_writer)
    out = tmp_path / "out.png"
    if existing:
        out.write_bytes(b"old")
    scan = scan_of(samples(8, 3))
    with pytest.raises(ImageError, match="No space left"):
        write_image(out, scan.pixels, scan, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.png"] if existing else [])
    if existing:
        assert out.read_bytes() == b"old"


def test_successful_write_leaves_no_temp_file(tmp_path):
    scan = scan_of(samples(8, 3))
    for ext in (".png", ".tif", ".jpg"):
        write_image(tmp_path / f"out{ext}", scan.pixels, scan)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.png", "out.tif"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o666 & ~umask  # not 0600


# ---------------------------------------------------------------- broken inputs

def good_file(tmp_path: Path, ext: str) -> Path:
    path = tmp_path / f"good{ext}"
    ints = samples(8, 3, 64, 64)
    if ext == ".tif":
        tifffile.imwrite(path, ints, photometric="rgb")
    else:
        Image.fromarray(ints).save(path)
    return path


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_truncated_files(tmp_path, ext):
    data = good_file(tmp_path, ext).read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    assert_image_error(cut, "truncated")


def test_empty_missing_folder_and_text_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert_image_error(tmp_path / "empty.png", "empty")
    assert_image_error(tmp_path / "missing.png", "not found")
    (tmp_path / "folder.png").mkdir()
    assert_image_error(tmp_path / "folder.png", "folder")
    (tmp_path / "notes.png").write_text("These are my notes, not a picture.\n")
    assert_image_error(tmp_path / "notes.png", "text file")
    (tmp_path / "noise.tif").write_bytes(bytes(range(256)))
    assert_image_error(tmp_path / "noise.tif", "not a PNG, JPEG or TIFF")


def png_with_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_absurd_dimensions_rejected_before_decoding(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_header(100_000, 100_000))
    error = assert_image_error(bomb, "megapixels")
    assert "100000x100000" in error.why

    small = good_file(tmp_path, ".png")  # 64x64 = 4096 pixels
    assert_image_error(small, "limit", max_pixels=4095)
    assert read_image(small, max_pixels=4096).pixels.shape == (64, 64, 3)
    monkeypatch.setenv("RESTORER_MAX_PIXELS", "1000")
    assert_image_error(small, "limit")
    assert_image_error(good_file(tmp_path, ".tif"), "limit")
    assert read_image(small, max_pixels=5000).pixels.shape == (64, 64, 3)  # argument wins


def test_tiny_images_are_fine(tmp_path):
    Image.new("L", (1, 1), 7).save(tmp_path / "one.png")
    assert ints_of(read_image(tmp_path / "one.png")).tolist() == [[[7]]]


def test_cmyk_is_refused(tmp_path):
    Image.new("CMYK", (8, 8), (0, 50, 100, 0)).save(tmp_path / "cmyk.jpg")
    assert_image_error(tmp_path / "cmyk.jpg", "CMYK")
    tifffile.imwrite(tmp_path / "cmyk.tif", np.zeros((8, 8, 4), np.uint8), photometric="separated")
    assert_image_error(tmp_path / "cmyk.tif", "CMYK")


def test_float_tiff_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "float.tif", np.zeros((4, 4), np.float32))
    assert_image_error(tmp_path / "float.tif", "32-bit")


def test_multi_page_tiff_page_choice(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        for value in (10, 20, 30):
            tif.write(np.full((4, 5), value, np.uint8), photometric="minisblack")
    assert ints_of(read_image(path)).max() == 10
    assert ints_of(read_image(path, page=2)).max() == 30
    assert_image_error(path, "page 3 does not exist; the file has 3 page(s)", page=3)
    assert_image_error(good_file(tmp_path, ".png"), "only one page", page=1)


def test_garbage_after_valid_signature(tmp_path):
    for ext, magic in ((".png", b"\x89PNG\r\n\x1a\n"), (".jpg", b"\xff\xd8\xff\xe0"),
                       (".tif", b"II*\x00")):
        path = tmp_path / f"junk{ext}"
        path.write_bytes(magic + b"\x13" * 40)
        assert_image_error(path, "damaged")


# ---------------------------------------------------------------- masks

def test_read_mask(tmp_path):
    mask = np.zeros((6, 9), np.uint8)
    mask[2, 3] = 1
    mask[5, 8] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    got = read_mask(tmp_path / "mask.png", (6, 9, 3))
    assert got.dtype == bool and got.sum() == 2 and got[2, 3] and got[5, 8]
    Image.fromarray(np.stack([mask * 255] * 3, axis=2)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png", (6, 9)), got)


def test_mask_of_wrong_size(tmp_path):
    Image.new("L", (9, 5)).save(tmp_path / "mask.png")
    with pytest.raises(ImageError) as info:
        read_mask(tmp_path / "mask.png", (6, 9))
    assert str(tmp_path / "mask.png") in str(info.value)
    assert "9x5" in info.value.why and "9x6" in info.value.why


def test_broken_mask(tmp_path):
    (tmp_path / "mask.png").write_text("not a mask")
    with pytest.raises(ImageError, match="mask"):
        read_mask(tmp_path / "mask.png", (6, 9))
    with pytest.raises(ImageError, match="not found"):
        read_mask(tmp_path / "none.png", (6, 9))


def test_error_message_format():
    error = ImageError("/scans/a.png", "file is\nempty")
    assert str(error) == "/scans/a.png: file is empty"
    assert error.path == "/scans/a.png" and error.why == "file is empty"

"""Non-DICOM inputs: NIfTI / NRRD / MHA through SimpleITK, plain 2D images through Pillow.

All come out as the same Volume type (LPS, like ITK), so nothing downstream knows the format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medview.io.errors import LoadError
from medview.io.volume import Volume


def read_volume_file(path: str | Path, kind: str) -> Volume:
    """NIfTI (.nii/.nii.gz), NRRD or MetaImage (.mha/.mhd) -> Volume."""
    import SimpleITK as sitk

    path = str(path)
    if Path(path).stat().st_size == 0:
        raise LoadError(path, "empty file (0 bytes)")
    if kind == "nifti":
        _check_nifti_header(path)
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        spacing = reader.GetSpacing()
        if any((not np.isfinite(s)) or s <= 0 for s in spacing):
            raise LoadError(path, f"invalid voxel spacing {tuple(spacing)} in the header (must be > 0)")
        if any(s > MAX_SPACING_MM for s in spacing):
            raise LoadError(path, f"absurd voxel spacing {tuple(spacing)} mm in the header")
        if not all(np.isfinite(reader.GetOrigin())) or not all(np.isfinite(reader.GetDirection())):
            raise LoadError(path, "the header's origin or direction holds NaN or infinite values")
        implied = float(np.prod(reader.GetSize(), dtype=np.float64)) * reader.GetNumberOfComponents() * \
            _bytes_per_component(reader)
        if implied > MAX_VOXEL_BYTES:
            raise LoadError(path, f"the header's size {reader.GetSize()} is absurd: corrupt header")
        if kind in ("nrrd", "mha"):
            _check_attached_payload(path, kind, reader)
        img = reader.Execute()
    except LoadError:
        raise
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        reason = next((line for line in first if "ERROR" in line or "Could not" in line or "Exception" in line),
                      first[-1] if first else "unknown error")
        raise LoadError(path, f"cannot read {kind.upper()} file: {reason.strip()}") from exc

    warnings: list[str] = []
    if img.GetDimension() == 4:
        size = img.GetSize()
        warnings.append(f"4D image with {size[3]} volumes; showing the first")
        img = sitk.Extract(img, [size[0], size[1], size[2], 0], [0, 0, 0, 0])
    elif img.GetDimension() > 4 or img.GetDimension() < 2:
        raise LoadError(path, f"{img.GetDimension()}D images are not supported")
    ncomp = img.GetNumberOfComponentsPerPixel()
    if ncomp not in (1, 3, 4):
        raise LoadError(path, f"{ncomp} components per voxel are not supported (1 or RGB)")
    volume = Volume.from_sitk(img, {"Modality": "", "format": kind, "source_path": path})
    if ncomp == 4:
        volume.array = np.ascontiguousarray(volume.array[..., :3])
    arr = volume.array
    if np.issubdtype(arr.dtype, np.floating):
        try:
            bad = _non_finite_mask(path, kind, arr)
        except Exception as exc:  # noqa: BLE001 - nibabel/zlib on a file ITK could read
            raise LoadError(path, f"voxel data is corrupt ({type(exc).__name__}: {exc})") from exc
        n_bad = int(bad.sum())
        if n_bad == arr.size:
            raise LoadError(path, "every voxel is NaN or infinite")
        if n_bad:
            fill = float(arr[~bad].min())
            arr[bad] = fill
            warnings.append(f"{n_bad} NaN/infinite voxels replaced by the minimum value {fill:g}")
    volume.warnings.extend(warnings)
    return volume


def _non_finite_mask(path: str, kind: str, arr: np.ndarray) -> np.ndarray:
    """Where the file holds NaN/inf. ITK's NIfTI reader silently turns NaN into 0, which would
    hide masked-out regions as real zeros, so NIfTI is checked with nibabel on the raw data."""
    if kind != "nifti":
        return ~np.isfinite(arr)
    import nibabel as nib

    raw = np.asanyarray(nib.load(path).dataobj)
    if raw.ndim == 4:
        raw = raw[..., 0]
    if raw.ndim == 2:
        raw = raw[..., np.newaxis]
    mask = ~np.isfinite(raw.T)  # nibabel (i, j, k) -> ours (k, j, i); ITK keeps the storage order
    return mask.reshape(arr.shape) if mask.size == arr.size else ~np.isfinite(arr)


# a header that implies more voxel data than this is a corrupt header, not an image to try to allocate
MAX_VOXEL_BYTES = 16 * 1024**3
MAX_SPACING_MM = 1.0e4  # 10 m per voxel: no scanner writes that; a flipped exponent does


def _check_nifti_header(path: str) -> None:
    """Refuse what ITK would accept silently: zero/absurd pixdim (ITK makes 0 into 1 mm), a NaN or
    infinite sform/qform, dims implying terabytes, and voxel data shorter than the header says
    (ITK zero-fills a truncated file)."""
    import gzip
    import zlib

    import nibabel as nib

    try:
        img = nib.load(path)
        hdr = img.header
        shape = tuple(int(s) for s in hdr.get_data_shape())
        zooms = _raw_pixdim(path) or tuple(float(z) for z in hdr.get_zooms())  # nibabel mends a zero
        bitpix = int(hdr["bitpix"])
        # a single-file .nii keeps its voxels after the 352-byte header even when vox_offset says 0
        offset = max(int(hdr.get_data_offset()), 352 if bytes(hdr['magic']).startswith(b'n+') else 0)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds for a broken header
        raise LoadError(path, f"cannot read NIFTI header: {type(exc).__name__}: {exc}") from exc
    if not shape or any(s < 1 for s in shape):
        raise LoadError(path, f"invalid image size {shape} in the header")
    spatial = zooms[: min(len(shape), 3)]
    if any((not np.isfinite(s)) or s <= 0 for s in spatial):
        raise LoadError(path, f"invalid voxel spacing {spatial} in the header (must be > 0)")
    if any(s > MAX_SPACING_MM for s in spatial):
        raise LoadError(path, f"absurd voxel spacing {spatial} mm in the header")
    srows = np.stack([np.asarray(hdr[k], dtype=np.float64) for k in ("srow_x", "srow_y", "srow_z")])
    quat = np.asarray([hdr[k] for k in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
                                        "qoffset_z")], dtype=np.float64)
    if int(hdr["sform_code"]) and not np.all(np.isfinite(srows)):
        raise LoadError(path, "the header's sform holds NaN or infinite values")
    if int(hdr["qform_code"]) and not np.all(np.isfinite(quat)):
        raise LoadError(path, "the header's qform holds NaN or infinite values")
    nbytes = int(np.prod(shape, dtype=np.float64)) * max(bitpix, 8) // 8
    if nbytes > MAX_VOXEL_BYTES:
        raise LoadError(path, f"the header's size {shape} implies {nbytes / 1024**3:.0f} GiB of voxels: "
                              "corrupt header")
    need = offset + nbytes
    try:
        if path.lower().endswith(".gz"):
            have = 0
            with gzip.open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    have += len(chunk)
        else:
            have = Path(path).stat().st_size
    except (OSError, EOFError, zlib.error) as exc:
        raise LoadError(path, f"compressed data is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    if have < need:
        missing = 1.0 - max(have - offset, 0) / nbytes
        raise LoadError(path, f"truncated: the header implies {need} bytes, the file holds {have} "
                              f"({missing:.0%} of the voxel data missing)")


def _check_attached_payload(path: str, kind: str, reader) -> None:
    """Voxel data stored in the same file (NRRD raw/gzip, MetaImage LOCAL): its length must be what
    the header implies, and zlib data must pass its own checksum, which ITK does not check."""
    import gzip
    import zlib

    import SimpleITK as sitk

    data = Path(path).read_bytes()
    if kind == "nrrd":
        end = data.find(b"\n\n")
        if end < 0 or b"\ndata file:" in data[:end] or b"\ndatafile:" in data[:end]:
            return  # detached data: ITK reads (and checks) the other file
        header, payload = data[:end].decode("latin-1").lower(), data[end + 2:]
        encoding = next((line.split(":", 1)[1].strip() for line in header.splitlines()
                         if line.startswith("encoding:")), "raw")
        compressed = encoding in ("gzip", "gz")
        if encoding not in ("raw", "gzip", "gz"):
            return
    else:
        marker = data.find(b"ElementDataFile = LOCAL")
        if marker < 0:
            return
        header = data[:marker].decode("latin-1")
        payload = data[data.index(b"\n", marker) + 1:]
        compressed = "CompressedData = True" in header
    pixel_type = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    n_bytes = int(np.prod(reader.GetSize(), dtype=np.int64)) * reader.GetNumberOfComponents() * \
        _bytes_per_component(reader)
    if compressed:
        try:
            payload = gzip.decompress(payload) if kind == "nrrd" else zlib.decompress(payload)
        except (OSError, EOFError, zlib.error) as exc:
            raise LoadError(path, f"compressed voxel data is corrupt ({type(exc).__name__}: {exc})") from exc
    if len(payload) != n_bytes:
        raise LoadError(path, f"the header implies {n_bytes} bytes of {pixel_type} voxels, the file holds "
                              f"{len(payload)}: corrupt header or truncated data")


def _bytes_per_component(reader) -> int:
    import SimpleITK as sitk

    comp = reader.GetPixelID()
    sizes = {sitk.sitkUInt8: 1, sitk.sitkInt8: 1, sitk.sitkUInt16: 2, sitk.sitkInt16: 2, sitk.sitkUInt32: 4,
             sitk.sitkInt32: 4, sitk.sitkUInt64: 8, sitk.sitkInt64: 8, sitk.sitkFloat32: 4, sitk.sitkFloat64: 8,
             sitk.sitkVectorUInt8: 1, sitk.sitkVectorInt8: 1, sitk.sitkVectorUInt16: 2, sitk.sitkVectorInt16: 2,
             sitk.sitkVectorUInt32: 4, sitk.sitkVectorInt32: 4, sitk.sitkVectorFloat32: 4,
             sitk.sitkVectorFloat64: 8}
    return sizes.get(comp, 1)


def _raw_pixdim(path: str) -> tuple[float, ...] | None:
    """pixdim[1:4] as stored (nibabel's loader replaces a zero by 1, which would hide a broken scale)."""
    import gzip
    import struct

    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        header = f.read(348)
    if len(header) < 348:
        return None
    for endian in "<>":
        if struct.unpack(endian + "i", header[:4])[0] == 348:
            return tuple(float(s) for s in struct.unpack(endian + "3f", header[80:92]))
    return None  # NIfTI-2 or not NIfTI-1: nibabel's values


def read_image_file(path: str | Path) -> Volume:
    """PNG / JPEG / TIFF / BMP -> one-slice Volume; RGB stays RGB (z, y, x, 3) uint8.

    Plain images carry no pixel size: spacing is 1 and ``meta['pixel_size_known']`` is False, so
    measurements are reported in pixels.
    """
    from PIL import Image, UnidentifiedImageError

    path = str(path)
    if Path(path).stat().st_size == 0:
        raise LoadError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr"):
                has_colour = mode not in ("LA",) and not _palette_is_grey(im)
                im = im.convert("RGB" if has_colour else "L")
            elif mode == "1":
                im = im.convert("L")
            arr = np.asarray(im)
    except UnidentifiedImageError as exc:
        raise LoadError(path, "not a readable image (unknown or corrupt format)") from exc
    except Image.DecompressionBombError as exc:
        raise LoadError(path, f"refused: {exc}") from exc
    except (ValueError, SyntaxError) as exc:  # Pillow's parsers on corrupt headers
        raise LoadError(path, f"cannot read image: {exc}") from exc
    except OSError as exc:
        raise LoadError(path, f"cannot read image: {exc}") from exc
    if arr.ndim == 3 and arr.shape[2] == 3 and _is_grey_rgb(arr):
        arr = np.ascontiguousarray(arr[..., 0])  # grey stored as RGB: one channel is the truth
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    elif arr.ndim == 3:
        arr = arr[np.newaxis]
    meta = {"Modality": "", "format": "image", "source_path": path, "pixel_size_known": False,
            "SeriesDescription": Path(path).name}
    return Volume(np.ascontiguousarray(arr), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), meta)


def _palette_is_grey(im) -> bool:
    if im.mode != "P":
        return False
    pal = im.getpalette() or []
    rgb = np.asarray(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def _is_grey_rgb(arr: np.ndarray) -> bool:
    sample = arr[::7, ::7]
    return bool(np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2])
                and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]))

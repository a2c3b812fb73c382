"""DICOM series -> Volume: sort along the slice normal, rescale, keep LPS geometry.

Speed matters (a 300-slice CT is opened many times a day), so uncompressed slices are read
straight from the file offset the header scan recorded (one read per file, no second parse)
into a preallocated array; everything else goes through pydicom's decoders (JPEG, JPEG-LS,
JPEG 2000, RLE via pylibjpeg/gdcm). Rescale happens in place: ``slope*a+intercept`` with
temporaries costs ten times more on a large series.

Geometry is never guessed silently: gantry tilt, non-uniform spacing, missing slices, 4D series
and absent orientation all load, and each adds a line to ``Volume.warnings``.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from typing import Callable, Optional

import numpy as np

from medview.io.errors import LoadError
from medview.io.study_index import ImageRef, SeriesInfo
from medview.io.volume import Volume
from medview.progress import CancelledFn, ProgressFn, check_cancelled, no_progress

MiddleSliceFn = Callable[[int, np.ndarray], None]

_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
_IMPLICIT = "1.2.840.10008.1.2"
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}


def load_series(info: SeriesInfo, progress: Optional[ProgressFn] = None,
                cancelled: Optional[CancelledFn] = None,
                on_middle_slice: Optional[MiddleSliceFn] = None) -> Volume:
    """Read the pixels of a scanned DICOM series into a Volume (LPS geometry)."""
    progress = progress or no_progress
    if not info.images:
        raise LoadError(info.path, "series has no images")
    warnings: list[str] = list(info.warnings)
    others: list[list[ImageRef]] = []  # a 4D series' other volumes (time points, b-values)
    refs, geometry, plan = _arrange(info.images, warnings, others)
    n = len(refs)
    ref0 = refs[0]
    rgb = ref0.samples_per_pixel == 3

    slopes = np.array([r.slope for r in refs], dtype=np.float64)
    intercepts = np.array([r.intercept for r in refs], dtype=np.float64)
    rescaled = not rgb and (np.any(slopes != 1.0) or np.any(intercepts != 0.0))

    decoded_files: dict[str, np.ndarray] = {}  # multi-frame / compressed files, decoded once
    order = list(range(n))
    if on_middle_slice is not None and n > 2:
        mid = n // 2
        order = [mid] + [k for k in range(n) if k != mid]
    out: Optional[np.ndarray] = None  # stored values first, allocated once the first frame is known
    for done, k in enumerate(order):
        if done % 16 == 0:
            check_cancelled(cancelled)
            progress(done / n, f"Reading slice {done + 1}/{n}")
        ref = refs[k]
        raw = _read_pixels(ref, decoded_files)
        if out is None:
            shape = (n, ref0.rows, ref0.columns) + ((3,) if rgb else ())
            out = np.empty(shape, dtype=np.uint8 if rgb else raw.dtype.newbyteorder("="))
        if raw.shape[:2] != (ref0.rows, ref0.columns):
            raise LoadError(ref.path, f"frame size {raw.shape[:2]} differs from the series' "
                                      f"{(ref0.rows, ref0.columns)}")
        if rgb and raw.dtype.itemsize > 1:  # 16/32-bit colour: keep the top 8 bits, never wrap them
            shift = 8 * raw.dtype.itemsize - 8
            if done == 0:
                warnings.append(f"RGB with {8 * raw.dtype.itemsize} bits per channel: shown reduced to 8 bits "
                                "per channel")
            raw = (raw.astype(np.uint64) >> shift).astype(np.uint8)
        out[k] = raw
        if done == 0 and on_middle_slice is not None and n > 2:
            preview = out[k].astype(np.float32) * np.float32(slopes[k]) + np.float32(intercepts[k]) \
                if rescaled else out[k]
            on_middle_slice(k, preview)
    assert out is not None
    if rescaled:
        out = _rescale_in_place(out, slopes, intercepts)
    progress(1.0, f"Read {n} slices")

    meta = _series_meta(info, refs)
    if others:  # JSON-friendly: medview.viewing.frames reads them when the viewer asks
        meta["frames_4d"] = [[[r.path, r.frame] for r in vol_refs] for vol_refs in others]
    if plan is not None and plan["n_planes"] != n:
        out = _on_planes(out, plan)
        meta["slice_planes"] = [int(k) for k in plan["planes"]]
        meta["missing_planes"] = plan["missing"]
        meta["interpolated_planes"] = plan["interpolated"]
    spacing, origin, direction = geometry
    volume = Volume(out, spacing, origin, direction, meta, warnings)
    return volume


# ---------------------------------------------------------------------------------------------
# geometry

def _arrange(images: list[ImageRef], warnings: list[str], others: list | None = None):
    """Choose one 3D stack, sort it along the normal and derive spacing/origin/direction.
    A 4D series' other volumes (same positions) go into ``others``, one list of refs each."""
    refs = list(images)
    if others is None:
        others = []
    # enhanced objects may hold several stacks / temporal positions: the first is the volume
    stack_keys = sorted({r.stack_key for r in refs}, key=lambda k: tuple(str(x) for x in k))
    if len(stack_keys) > 1:
        others.extend([r for r in images if r.stack_key == k] for k in stack_keys[1:])
        refs = [r for r in refs if r.stack_key == stack_keys[0]]
        warnings.append(f"{len(stack_keys)} volumes (stacks/temporal positions/b-values) in one object; "
                        "showing the first (the Volume box browses the others)")

    ref0 = refs[0]
    if ref0.orientation is None:
        warnings.append("no ImageOrientationPatient: assumed axial (identity orientation)")
        orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    else:
        orientation = ref0.orientation
    row = np.array(orientation[:3], dtype=np.float64)
    col = np.array(orientation[3:], dtype=np.float64)
    row /= np.linalg.norm(row) or 1.0
    col /= np.linalg.norm(col) or 1.0
    normal = np.cross(row, col)

    if ref0.pixel_spacing is None:
        warnings.append("no PixelSpacing: distances are in pixels, not mm")
        dy, dx = 1.0, 1.0
    else:
        dy, dx = ref0.pixel_spacing
        if dx <= 0 or dy <= 0 or not np.isfinite(dx * dy):
            warnings.append(f"invalid PixelSpacing {ref0.pixel_spacing}: using 1 mm")
            dx, dy = 1.0, 1.0

    fallback_dz = ref0.spacing_between_slices or ref0.slice_thickness or 1.0
    if fallback_dz <= 0 or not np.isfinite(fallback_dz):
        fallback_dz = 1.0
    if any(r.position is None for r in refs):
        warnings.append("no ImagePositionPatient: slices ordered by instance number, "
                        f"spacing {fallback_dz:g} mm from the header")
        refs.sort(key=lambda r: (r.instance_number, r.frame))
        origin = np.array(ref0.position or (0.0, 0.0, 0.0))
        return refs, ((dx, dy, fallback_dz), tuple(origin), np.column_stack([row, col, normal])), None

    # several images at one position (4D: time points, diffusion directions): keep the first
    by_position: dict[float, list[ImageRef]] = defaultdict(list)
    for r in refs:
        by_position[round(float(np.dot(r.position, normal)), 3)].append(r)
    counts = {len(v) for v in by_position.values()}
    if max(counts) > 1:
        if len(refs) == max(counts) and len(by_position) == 1 and ref0.n_frames > 1 and not ref0.enhanced:
            # classic multi-frame without per-frame positions: frames stacked along the normal
            warnings.append(f"multi-frame object without per-frame positions: {len(refs)} frames stacked "
                            f"{fallback_dz:g} mm apart")
            refs.sort(key=lambda r: r.frame)
            origin = np.array(ref0.position)
            return refs, ((dx, dy, fallback_dz), tuple(origin), np.column_stack([row, col, normal])), None
        n_volumes = max(counts)
        in_time = {k: sorted(v, key=lambda r: (r.temporal_position or 0, r.acquisition_number or 0,
                                               r.instance_number, r.frame)) for k, v in by_position.items()}
        if counts == {n_volumes}:  # every position in every volume: the others can be browsed
            others.extend([v[t] for v in in_time.values()] for t in range(1, n_volumes))
            warnings.append(f"{n_volumes} images share each slice position (4D series: time points or "
                            "diffusion directions); showing the first volume (the Volume box browses the others)")
        else:
            warnings.append(f"{n_volumes} images share some slice positions, not all (an incomplete 4D "
                            "series); showing the first image at each position")
        refs = [v[0] for v in in_time.values()]

    projections = np.array([np.dot(r.position, normal) for r in refs])
    order = np.argsort(projections, kind="stable")
    refs = [refs[i] for i in order]
    projections = projections[order]
    positions = np.array([r.position for r in refs], dtype=np.float64)
    origin = positions[0]
    n = len(refs)
    if n == 1:
        return refs, ((dx, dy, fallback_dz), tuple(origin), np.column_stack([row, col, normal])), None

    steps = np.diff(projections)
    if float(np.median(steps)) <= 1e-6:
        raise LoadError(refs[0].path, "slices do not advance along the slice normal (zero spacing)")
    planes, dz_n = _fit_planes(projections - projections[0], steps)
    # position of every slice = origin + k * step (least squares): under gantry tilt the step is
    # not along the normal and the affine keeps that shear
    ks = planes.astype(np.float64)
    design = np.c_[np.ones(n), ks]
    coef, *_ = np.linalg.lstsq(design, positions, rcond=None)
    origin, step_vector = coef[0], coef[1]
    k_axis = step_vector / np.linalg.norm(step_vector)
    tilt = float(np.degrees(np.arccos(np.clip(abs(np.dot(k_axis, normal)), -1.0, 1.0))))
    if tilt > 0.5:
        dz = float(np.linalg.norm(step_vector))
        warnings.append(f"gantry tilt {tilt:.1f} deg: slices sheared; the geometry keeps the shear "
                        "(exports carry it in the NIfTI sform)")
    else:
        k_axis, dz = normal, dz_n
        origin = positions[0]
    plan = _describe_planes(planes, positions, steps, dz_n, warnings)
    return refs, ((dx, dy, dz), tuple(origin), np.column_stack([row, col, k_axis])), plan


def _fit_planes(offsets: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, float]:
    """Plane index of every slice on the coarsest regular grid that holds every slice at its own
    position (within 0.1 mm): missing slices leave planes out, variable spacing gives a finer grid."""
    median = float(np.median(steps))
    n = len(offsets)
    for base in (median, float(steps.min())):
        for m in range(1, 9):
            d = base / m
            k = np.round(offsets / d)
            if k[-1] + 1 > 4 * n + 16 or len(set(k.tolist())) != n:
                continue
            d_fit = float(np.dot(k, offsets) / np.dot(k, k)) if k[-1] > 0 else d
            if float(np.abs(offsets - k * d_fit).max()) <= min(0.1, 0.05 * d_fit):
                return k.astype(int), d_fit
    d = float(steps.min())
    return np.round(offsets / d).astype(int), d


def _describe_planes(planes: np.ndarray, positions: np.ndarray, steps: np.ndarray, d: float,
                     warnings: list[str]) -> dict:
    """Which grid planes hold no source slice: 'missing' (a gap of 1.5 typical spacings or more,
    shown empty) or 'interpolated' (between neighbours of a variably spaced stack)."""
    n_planes = int(planes[-1]) + 1
    missing: list[int] = []
    interpolated: list[int] = []
    typical = float(np.median(steps))
    for a in range(len(planes) - 1):
        ka, kb = int(planes[a]), int(planes[a + 1])
        if kb - ka <= 1:
            continue
        between = list(range(ka + 1, kb))
        if steps[a] >= 1.5 * typical:
            count = round(steps[a] / typical) - 1
            missing += between
            warnings.append(f"{count} slice(s) missing between z={positions[a][2]:.1f} and "
                            f"z={positions[a + 1][2]:.1f} mm: shown as empty planes")
        else:
            interpolated += between
    if interpolated:
        warnings.append(f"non-uniform slice spacing {steps.min():.3g}..{steps.max():.3g} mm: every slice kept at "
                        f"its position on a regular {d:.3g} mm grid; {len(interpolated)} plane(s) between slices "
                        "interpolated")
    return {"planes": planes, "n_planes": n_planes, "missing": missing, "interpolated": interpolated}


# ---------------------------------------------------------------------------------------------
# pixels

def _on_planes(stack: np.ndarray, plan: dict) -> np.ndarray:
    """Source slices onto their grid planes; missing planes get the image minimum (empty),
    interpolated planes a linear blend of the neighbouring source slices."""
    planes = plan["planes"]
    interp = set(plan["interpolated"])
    kind = stack.dtype if not interp or stack.dtype.kind == "f" else np.dtype(np.float32)
    out = np.empty((plan["n_planes"],) + stack.shape[1:], dtype=kind)
    out[...] = stack.min() if stack.size else 0
    out[planes] = stack
    for a in range(len(planes) - 1):
        ka, kb = int(planes[a]), int(planes[a + 1])
        for k in range(ka + 1, kb):
            if k in interp:
                w = (k - ka) / (kb - ka)
                out[k] = (1 - w) * stack[a].astype(np.float32) + w * stack[a + 1].astype(np.float32)
    return out


def _rescale_in_place(out: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """Modality LUT (slope/intercept) with at most one conversion of the whole array.

    Integral rescales stay integers in the smallest type that holds the actual values (int16
    for CT in HU); other rescales go to float32. Arithmetic is in place, slice by slice.
    """
    integral = np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts))
    if integral:
        lo, hi = float(out.min()), float(out.max())
        ends = [lo * s for s in (slopes.min(), slopes.max())] + [hi * s for s in (slopes.min(), slopes.max())]
        v_lo, v_hi = min(ends) + intercepts.min(), max(ends) + intercepts.max()
        target = np.dtype(np.int16) if -32768 <= v_lo and v_hi <= 32767 else np.dtype(np.int32)
        if v_lo >= 0 and v_hi <= 65535 and out.dtype == np.uint16:
            target = np.dtype(np.uint16)
    else:
        target = np.dtype(np.float32)
    if out.dtype != target:
        out = out.astype(target)
    for k in range(out.shape[0]):
        if slopes[k] != 1.0:
            out[k] *= target.type(slopes[k])
        if intercepts[k] != 0.0:
            out[k] += target.type(intercepts[k])
    return out


def read_frame(ref: ImageRef) -> np.ndarray:
    """One frame as display values (rescale slope/intercept applied; RGB as stored)."""
    raw = _read_pixels(ref, {})
    if ref.samples_per_pixel == 1 and (ref.slope != 1.0 or ref.intercept != 0.0):
        return raw.astype(np.float32) * np.float32(ref.slope) + np.float32(ref.intercept)
    return raw


def _read_pixels(ref: ImageRef, cache: dict[str, np.ndarray]) -> np.ndarray:
    """One frame's stored values; multi-frame files are decoded once and kept in ``cache``."""
    if ref.pixel_offset is not None and ref.n_frames == 1 and ref.samples_per_pixel == 1:
        if ref.transfer_syntax in _NATIVE_SYNTAXES:
            raw = _read_native(ref)
        else:
            raw = _decode_encapsulated(ref)
        if raw is not None:
            return raw
    arr = cache.get(ref.path)
    if arr is None:
        arr = _decode_with_pydicom(ref)
        if ref.n_frames > 1:
            cache[ref.path] = arr
    if ref.n_frames > 1:
        return arr[ref.frame]
    return arr


def _read_native(ref: ImageRef) -> Optional[np.ndarray]:
    """Uncompressed slice read at the recorded Pixel Data offset; None when pydicom must decode
    (signed data with unused high bits needs sign extension)."""
    if ref.pixel_representation == 1 and ref.bits_stored < ref.bits_allocated:
        return None
    if ref.bits_allocated not in (8, 16, 32):
        return None
    big = ref.transfer_syntax == _BIG_ENDIAN
    implicit = ref.transfer_syntax == _IMPLICIT
    with open(ref.path, "rb") as f:
        f.seek(ref.pixel_offset)  # type: ignore[arg-type]
        header = f.read(12)
        if len(header) < 8:
            raise LoadError(ref.path, "file is truncated before its pixel data")
        endian = ">" if big else "<"
        if implicit:
            length = struct.unpack(endian + "I", header[4:8])[0]
            f.seek(ref.pixel_offset + 8)  # type: ignore[operator]
        elif header[4:6] in _LONG_VRS:
            length = struct.unpack(endian + "I", header[8:12])[0]
        else:
            length = struct.unpack(endian + "H", header[6:8])[0]
            f.seek(ref.pixel_offset + 8)  # type: ignore[operator]
        if length == 0xFFFFFFFF:
            return None  # encapsulated after all
        n_pixels = ref.rows * ref.columns
        itemsize = ref.bits_allocated // 8
        if length < n_pixels * itemsize:
            raise LoadError(ref.path, f"pixel data is truncated ({length} bytes, expected "
                                      f"{n_pixels * itemsize})")
        data = f.read(n_pixels * itemsize)
    if len(data) < n_pixels * itemsize:
        raise LoadError(ref.path, "file is truncated inside its pixel data")
    kind = "i" if ref.pixel_representation == 1 else "u"
    arr = np.frombuffer(data, dtype=f"{endian}{kind}{itemsize}").reshape(ref.rows, ref.columns)
    if ref.bits_stored < ref.bits_allocated and ref.pixel_representation == 0:
        arr = arr & np.array((1 << ref.bits_stored) - 1, dtype=arr.dtype)
    return arr


def _decode_encapsulated(ref: ImageRef) -> Optional[np.ndarray]:
    """A compressed single-frame greyscale slice decoded from one read of its file: the
    encapsulated Pixel Data at the offset the scan recorded goes to pydicom's decoder with the
    image facts the scan already has (no second parse of the header). None: the full pydicom
    path decides (and names any error)."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    try:
        decoder = get_decoder(ref.transfer_syntax)
    except (NotImplementedError, ValueError):
        return None
    with open(ref.path, "rb") as f:
        data = f.read()
    off = int(ref.pixel_offset)  # type: ignore[arg-type]
    big = ref.transfer_syntax == _BIG_ENDIAN
    header = data[off:off + 12]
    if len(header) < 12 or header[4:6] not in (b"OB", b"OW") or header[8:12] != b"\xff\xff\xff\xff" or big:
        return None  # not the explicit-VR encapsulated form every compressed syntax uses
    try:
        arr, _ = decoder.as_array(
            data[off + 12:], rows=ref.rows, columns=ref.columns, samples_per_pixel=1,
            bits_allocated=ref.bits_allocated, bits_stored=ref.bits_stored,
            pixel_representation=ref.pixel_representation, photometric_interpretation=ref.photometric,
            number_of_frames=1, transfer_syntax_uid=UID(ref.transfer_syntax), pixel_keyword="PixelData",
        )
    except Exception:  # noqa: BLE001 - the full path below re-decodes and reports the error
        return None
    return arr


def _decode_with_pydicom(ref: ImageRef) -> np.ndarray:
    import pydicom

    try:
        ds = pydicom.dcmread(ref.path, force=True)
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoder errors name the file for the user
        ts = ref.transfer_syntax
        name = getattr(pydicom.uid.UID(ts), "name", ts) if ts else "unknown transfer syntax"
        raise LoadError(ref.path, f"cannot decode pixel data ({name}): {exc}") from exc
    return arr


def _series_meta(info: SeriesInfo, refs: list[ImageRef]) -> dict:
    modality = info.modality
    meta = {
        "Modality": modality,
        "SeriesInstanceUID": info.series_uid,
        "StudyInstanceUID": info.study_uid,
        "FrameOfReferenceUID": info.frame_of_reference_uid,
        "PatientID": info.patient_id,
        "PatientName": info.patient_name,
        "StudyDate": info.study_date,
        "StudyDescription": info.study_description,
        "SeriesDescription": info.description,
        "SeriesNumber": info.series_number,
        "WindowCenter": info.window_center,
        "WindowWidth": info.window_width,
        "PhotometricInterpretation": refs[0].photometric,
        "source_path": info.path,
        "source_files": [r.path for r in refs],
        "source_frames": [r.frame for r in refs],
        "SOPInstanceUIDs": [r.sop_uid for r in refs],
        "format": "dicom",
    }
    if modality == "CT":
        meta["Units"] = "HU"
    return meta


def series_geometry(info: SeriesInfo) -> tuple[tuple[int, int, int], tuple[float, float, float], list[str]]:
    """Size (x, y, z), spacing and geometry warnings of a scanned series, without its pixels."""
    warnings: list[str] = []
    refs, (spacing, _origin, _direction), plan = _arrange(info.images, warnings)
    n = plan["n_planes"] if plan else len(refs)
    return (refs[0].columns, refs[0].rows, n), spacing, warnings

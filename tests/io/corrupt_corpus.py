"""Deterministic corrupt-input corpus built from real seed files (pydicom's and nibabel's test
data, resources/sample): truncations, bit flips, absurd headers, broken series.

``generate(root)`` writes every case under ``root`` and returns ``[Case, ...]``.
"""

from __future__ import annotations

import copy
import random
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SERIES = ROOT / "resources" / "sample" / "study" / "HippoCrop"


@dataclass
class Case:
    name: str
    path: Path
    seed: Path | None = None  # a harmless change must load exactly like this file
    may_be_clean: bool = False  # bit flips may hit bytes that do not matter
    in_voxel_data: bool = False  # a flip inside uncompressed voxel data: no format can detect it


def _voxel_data_start(key: str, data: bytes) -> int | None:
    """Where the uncompressed voxel bytes of a seed begin (None: compressed or unknown)."""
    if key.endswith(".nii"):
        return 352
    if key.endswith(".nrrd") and b"encoding: raw" in data[:data.find(b"\n\n")]:
        return data.index(b"\n\n") + 2
    if key.endswith(".dcm") and b"RLE" not in key.encode():
        tag = data.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data, native (uncompressed)
        return tag + 12 if tag >= 0 else None
    return None


def _seeds(root: Path) -> dict[str, Path]:
    import nibabel
    import pydicom.data
    import SimpleITK as sitk
    from PIL import Image

    seeds = root / "seeds"
    seeds.mkdir(parents=True)
    out = {n: Path(pydicom.data.get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm")}
    nib_data = Path(nibabel.__file__).parent / "tests" / "data"
    out["anatomical.nii"] = nib_data / "anatomical.nii"
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 1000, (6, 20, 24)).astype(np.int16)
    img = nibabel.Nifti1Image(arr, np.diag([0.9, 0.9, 2.0, 1.0]))
    nibabel.save(img, str(seeds / "small.nii.gz"))
    out["small.nii.gz"] = seeds / "small.nii.gz"
    im = sitk.GetImageFromArray(arr)
    im.SetSpacing((0.9, 0.9, 2.0))
    for name, comp in (("small.nrrd", False), ("small.mha", True)):
        sitk.WriteImage(im, str(seeds / name), useCompression=comp)
        out[name] = seeds / name
    rgb = rng.integers(0, 255, (40, 50, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(seeds / "small.png")
    Image.fromarray(rgb).save(seeds / "small.jpg", quality=90)
    out["small.png"] = seeds / "small.png"
    out["small.jpg"] = seeds / "small.jpg"
    return out


def _write(root: Path, name: str, data: bytes) -> Path:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def generate(root: Path) -> list[Case]:
    import nibabel
    import pydicom

    rnd = random.Random(12)
    seeds = _seeds(root)
    cases: list[Case] = []
    # truncations and bit flips of every seed
    for key, seed in seeds.items():
        data = seed.read_bytes()
        suffix = ".nii.gz" if key.endswith(".nii.gz") else seed.suffix
        stem = key.replace(".", "_")
        for frac in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98, 0.999):
            cut = max(1, int(len(data) * frac))
            # a cut after the image (trailing DICOM elements, PNG's IEND) may leave every voxel intact
            cases.append(Case(f"truncate {key} at {frac:.1%}", _write(root, f"trunc/{stem}_{cut}{suffix}", data[:cut]),
                              seed=seed, may_be_clean=True))
        for off in (10, 100, 200, 400):
            if off < len(data):
                cut = _write(root, f"trunc/{stem}_b{off}{suffix}", data[:off])
                cases.append(Case(f"truncate {key} at byte {off}", cut))
        voxels_at = _voxel_data_start(key, data)
        for n in range(12):
            raw = bytearray(data)
            pos = rnd.randrange(0, min(len(raw), 600))
            raw[pos] ^= 1 << rnd.randrange(8)
            cases.append(Case(f"bit flip {key} byte {pos}", _write(root, f"flip/{stem}_{n}{suffix}", bytes(raw)),
                              seed=seed, may_be_clean=True,
                              in_voxel_data=voxels_at is not None and pos >= voxels_at))
    # absurd NIfTI headers
    base = nibabel.load(str(seeds["small.nii.gz"]))
    arr = np.asanyarray(base.dataobj)

    def nifti(name, header_fn, data=arr):
        img = nibabel.Nifti1Image(data, base.affine)
        header_fn(img.header)
        p = root / "absurd" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        nibabel.save(img, str(p))
        return p

    def nan_sform(h):
        h.set_sform(np.full((4, 4), np.nan), code=1)
        h.set_qform(None, code=0)

    # nibabel rewrites the sform from the image affine on save, so the NaNs go into the bytes afterwards
    raw = bytearray(nifti("nan_sform.nii", nan_sform).read_bytes())
    raw[280:328] = np.full(12, np.nan, dtype="<f4").tobytes()  # srow_x, srow_y, srow_z
    raw[254:256] = struct.pack("<h", 1)  # sform_code 1: the sform is the geometry readers use
    raw[252:254] = struct.pack("<h", 0)  # no qform to fall back on
    cases.append(Case("NIfTI NaN sform", _write(root, "absurd/nan_sform.nii", bytes(raw))))
    raw = bytearray(nifti("huge_vox.nii", lambda h: None).read_bytes())
    raw[80:92] = struct.pack("<3f", 1e30, 1e30, 1e30)
    raw[252:256] = struct.pack("<hh", 0, 0)  # qform/sform codes 0: pixdim is the geometry
    cases.append(Case("NIfTI 1e30 mm voxels", _write(root, "absurd/huge_vox.nii", bytes(raw))))
    good = nifti("dims.nii", lambda h: None).read_bytes()
    for label, dims in (("zero dim", (3, 0, 20, 6)), ("negative dim", (3, -24, 20, 6)),
                        ("TB dims", (3, 100000, 100000, 100000))):
        raw = bytearray(good)
        raw[40:48] = struct.pack("<4h", *dims) if max(dims) < 32768 else raw[40:48]
        if label == "TB dims":
            raw[40:50] = struct.pack("<5h", 4, 30000, 30000, 30000, 30000)
        cases.append(Case(f"NIfTI {label}", _write(root, f"absurd/{label.replace(' ', '_')}.nii", bytes(raw))))
    # PNG claiming 100000 x 100000 (Pillow's decompression bomb)
    png = seeds["small.png"].read_bytes()
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    bomb = png[:8] + _png_chunk(b"IHDR", ihdr) + png[8 + 25:]
    cases.append(Case("PNG 100000x100000 header", _write(root, "absurd/bomb.png", bomb)))
    # DICOM absurd headers and series problems
    ct = pydicom.dcmread(seeds["CT_small.dcm"])

    def dcm(name, fn, src=ct):
        ds = copy.deepcopy(src)
        fn(ds)
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(p, enforce_file_format=True)
        return p

    def nan_pos(ds):
        ds.ImagePositionPatient = ["nan", "0", "0"]

    def huge_spacing(ds):
        ds.PixelSpacing = [1e30, 1e30]

    def zero_rows(ds):
        ds.Rows = 0

    def rgb(bits):
        def fn(ds):
            a = np.arange(ds.Rows * ds.Columns * 3, dtype=np.uint16 if bits == 16 else np.uint32)
            a = (a * 4099).reshape(ds.Rows, ds.Columns, 3)
            ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
            ds.BitsAllocated = ds.BitsStored = bits
            ds.HighBit = bits - 1
            ds.PixelRepresentation = 0
            for k in ("RescaleSlope", "RescaleIntercept"):
                if k in ds:
                    del ds[k]
            ds.PixelData = a.tobytes()
        return fn

    def enhanced_no_frames(ds):
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        frames = []
        for k in range(3):
            pos = Dataset()
            pos.ImagePositionPatient = [0, 0, 5 * k]
            item = Dataset()
            item.PlanePositionSequence = Sequence([pos])
            frames.append(item)
        ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
        a = np.stack([ds.pixel_array + 100 * k for k in range(3)]).astype(ds.pixel_array.dtype)
        ds.PixelData = a.tobytes()
        if "NumberOfFrames" in ds:
            del ds.NumberOfFrames

    for label, fn in (("NaN ImagePositionPatient", nan_pos), ("1e30 mm PixelSpacing", huge_spacing),
                      ("zero Rows", zero_rows), ("16-bit RGB", rgb(16)), ("32-bit RGB", rgb(32)),
                      ("enhanced without NumberOfFrames", enhanced_no_frames)):
        cases.append(Case(f"DICOM {label}", dcm(f"dicom/{label.replace(' ', '_')}.dcm", fn)))
    if SAMPLE_SERIES.is_dir():
        files = sorted(SAMPLE_SERIES.glob("*.dcm"), key=lambda p: int(p.stem))[:12]

        def series(name, mutate):
            d = root / "series" / name
            d.mkdir(parents=True)
            for f in files:
                shutil.copy(f, d / f.name)
            mutate(d)
            return d

        cases.append(Case("series with a duplicated slice",
                          series("dup", lambda d: shutil.copy(d / files[5].name, d / "dup.dcm"))))
        cases.append(Case("series with missing slices",
                          series("gap", lambda d: [(d / f.name).unlink() for f in files[4:7]])))
        cases.append(Case("series with a corrupt last slice", series("lastcut", lambda d: _cut(d / files[-1].name))))
        cases.append(Case("two series in one folder",
                          series("mixed", lambda d: shutil.copy(seeds["CT_small.dcm"], d / "ct.dcm"))))

        def nan_one(d):
            ds = pydicom.dcmread(d / files[3].name)
            ds.ImagePositionPatient = ["nan", "nan", "nan"]
            ds.save_as(d / files[3].name)

        cases.append(Case("series with one NaN slice position", series("nanpos", nan_one)))
    return cases


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(data) // 3])

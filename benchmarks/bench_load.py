"""Series load and header scan: MedView vs SimpleITK vs plain pydicom, interleaved, with peak RSS.

    .venv/bin/python benchmarks/bench_load.py [--rounds 5] [--slices 300]

Generates (once, under $TMPDIR/medview-bench-load) a 300-slice 512x512 int16 CT series (file
names shuffled) in three transfer syntaxes: explicit VR little endian (uncompressed), RLE
Lossless and JPEG 2000 Lossless (pydicom's encoders). Every measurement runs in a fresh
interpreter (warm disk cache) that times only the load call and reports its peak RSS (VmHWM)
above the interpreter's baseline with all three libraries imported:

  medview   ``medview.io.load_volume(folder)``: header scan + sort + read/decode + rescale -> Volume
  simpleitk ``GetGDCMSeriesFileNames`` (its sort) + ``ImageSeriesReader``, Int16 output
  pydicom   ``dcmread`` of every file, sort by position, ``pixel_array`` stacked, rescaled

The three alternate in a rotating order round by round; medians of --rounds. Then the header
scan alone: ``medview.io.scan(folder)`` vs ``pydicom.dcmread(stop_before_pixels=True,
specific_tags=<the scan's tags>)`` of the same files, interleaved in one process.
Lines: one per syntax, ``scan_ratio=``, ``ratio_rle=``, ``ratio_j2k=``; last line
``ratio=<MedView / fastest other, uncompressed, median>`` (goal <= 1.0; RLE goal <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_SLICES, SIZE = 300, 512
SYNTAXES = {"uncompressed": "1.2.840.10008.1.2.1", "rle": "1.2.840.10008.1.2.5", "j2k": "1.2.840.10008.1.2.4.90"}


def make_series(folder: Path, syntax: str, n_slices: int) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    body = ((yy - 256) ** 2 + (xx - 256) ** 2 < 200 ** 2).astype(np.int16)
    series_uid, study_uid, for_uid = generate_uid(), generate_uid(), generate_uid()
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian  # compressed below
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Bench^CT", "BENCH"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, for_uid
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-250.0, -250.0, -300.0 + 1.25 * k]
        ds.PixelSpacing, ds.SliceThickness = [0.9765625, 0.9765625], 1.25
        ds.Rows = ds.Columns = SIZE
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        pixels = (body * 1064 + rng.integers(0, 60, (SIZE, SIZE))).astype(np.int16)
        ds.PixelData = pixels.tobytes()
        if syntax != ExplicitVRLittleEndian:
            ds.compress(syntax, encoding_plugin="pylibjpeg" if syntax.endswith(".90") else "")
        # shuffle file names so neither reader gets the order for free
        ds.save_as(folder / f"{(k * 7919) % n_slices:04d}.dcm", enforce_file_format=True)


CHILD = r"""
import sys, time, json
import numpy, pydicom, SimpleITK as sitk
from medview.io import load_volume


def hwm():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024


def pydicom_load(folder):
    from pathlib import Path
    dss = [pydicom.dcmread(p) for p in sorted(Path(folder).glob('*.dcm'))]
    dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    arr = numpy.stack([d.pixel_array for d in dss])
    slope, icpt = float(dss[0].get('RescaleSlope', 1)), float(dss[0].get('RescaleIntercept', 0))
    if slope == 1.0 and icpt == int(icpt):  # integer rescale: the cheapest correct form
        return arr.astype(numpy.int16) + numpy.int16(icpt) if icpt else arr
    return arr * slope + icpt


def sitk_load(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder))
    reader.SetOutputPixelType(sitk.sitkInt16)
    img = reader.Execute()
    return img, sitk.GetArrayViewFromImage(img)  # a view: the image must stay alive


who, folder = sys.argv[1], sys.argv[2]
base = hwm()
t = time.perf_counter()
if who == 'medview':
    a = load_volume(folder).array
elif who == 'simpleitk':
    img, a = sitk_load(folder)
else:
    a = pydicom_load(folder)
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "rss": hwm() - base, "shape": list(a.shape),
                  "sum": float(numpy.asarray(a, numpy.float64).sum())}))
"""

LOADERS = ("medview", "simpleitk", "pydicom")


def run_child(who: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, who, str(folder)], capture_output=True, text=True,
                         cwd=str(ROOT), timeout=900)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_scan(folder: Path, rounds: int) -> float:
    import importlib

    import pydicom

    scan_mod = importlib.import_module("medview.io.scan")
    files = sorted(folder.glob("*.dcm"))
    tags = scan_mod._header_tags()

    def plain():
        for p in files:
            pydicom.dcmread(p, stop_before_pixels=True, specific_tags=tags)

    def ours():
        scan_mod.scan(folder)

    plain(), ours()
    a, b = [], []
    for r in range(rounds * 2):
        for fn, acc in ((ours, a), (plain, b)) if r % 2 == 0 else ((plain, b), (ours, a)):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"header scan, {len(files)} files: medview.io.scan {ma * 1000:.0f} ms, pydicom dcmread(stop_before_pixels, "
          f"{len(tags)} specific_tags) {mb * 1000:.0f} ms (goal <= 1.1x)", flush=True)
    return ma / mb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--slices", type=int, default=N_SLICES)
    args = ap.parse_args()
    base = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "medview-bench-load"
    ratios = {}
    for name, uid in SYNTAXES.items():
        folder = base / f"{name}-{args.slices}"
        if len(list(folder.glob("*.dcm"))) != args.slices:
            print(f"generating {args.slices} slices of {SIZE}x{SIZE} ({name}) in {folder} ...", flush=True)
            make_series(folder, uid, args.slices)
        for who in LOADERS:  # warm the page cache (and check every loader works)
            run_child(who, folder)
        res = {who: [] for who in LOADERS}
        for r in range(args.rounds):
            order = LOADERS[r % 3:] + LOADERS[:r % 3]
            for who in order:
                res[who].append(run_child(who, folder))
        parts, med = [], {}
        for who in LOADERS:
            ok = [x for x in res[who] if "error" not in x]
            if not ok:
                parts.append(f"{who} failed ({res[who][0]['error']})")
                continue
            med[who] = statistics.median(x["s"] for x in ok)
            rss = max(x["rss"] for x in ok)
            parts.append(f"{who} {med[who]:.3f} s, peak RSS +{rss / 1e6:.0f} MB")
        sums = {who: res[who][0].get("sum") for who in LOADERS if "error" not in res[who][0]}
        same = len({round(v, 0) for v in sums.values()}) == 1
        others = [med[w] for w in ("simpleitk", "pydicom") if w in med]
        ratios[name] = med["medview"] / min(others) if "medview" in med and others else float("nan")
        print(f"{name:12s} {args.slices}x{SIZE}x{SIZE} int16 ({(args.slices * SIZE * SIZE * 2) / 1e6:.0f} MB): "
              + " | ".join(parts) + f"; same voxel sum: {same}; medview / fastest other = {ratios[name]:.2f} "
              f"(median of {args.rounds})", flush=True)
    print(f"scan_ratio={bench_scan(base / f'uncompressed-{args.slices}', args.rounds):.2f}")
    print(f"ratio_rle={ratios['rle']:.2f}")
    print(f"ratio_j2k={ratios['j2k']:.2f}")
    print(f"ratio={ratios['uncompressed']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

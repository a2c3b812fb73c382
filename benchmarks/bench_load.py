"""Load speed of medview.io vs SimpleITK's ImageSeriesReader on a generated CT series.

Generates a 300-slice 512x512 int16 CT series (explicit VR little endian) once under
$TMPDIR/medview-bench-ct, then times, warm cache, best of 3:
  - medview.io.load_volume(folder): header scan + sort + read + rescale -> Volume
  - SimpleITK: GetGDCMSeriesFileNames (its sort) + ImageSeriesReader with Int16 output
and the peak RSS increase of the medview load (in a fresh subprocess) vs the volume's bytes.
Last line: ratio=<medview seconds / SimpleITK seconds> (goal <= 1.0).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_SLICES, SIZE = 300, 512


def make_series(folder: Path) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    body = ((yy - 256) ** 2 + (xx - 256) ** 2 < 200 ** 2).astype(np.int16)
    series_uid, study_uid, for_uid = generate_uid(), generate_uid(), generate_uid()
    for k in range(N_SLICES):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
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
        # shuffle file names so neither reader gets the order for free
        ds.save_as(folder / f"{(k * 7919) % N_SLICES:04d}.dcm", enforce_file_format=True)


def time_best(fn, repeats=3):
    best = float("inf")
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def medview_load(folder: Path):
    from medview.io import load_volume

    return load_volume(folder)


def sitk_load(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkInt16)
    return reader.Execute()


# VmHWM (not ru_maxrss, which a child inherits from its parent's peak across fork+exec)
_RSS_CHILD = """
import sys
from medview.io import load_volume
import numpy, pydicom, SimpleITK  # baseline includes the libraries
def hwm():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024
base = hwm()
v = load_volume(sys.argv[1])
print(hwm() - base, v.array.nbytes)
"""


def main() -> None:
    folder = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "medview-bench-ct"
    if len(list(folder.glob("*.dcm"))) != N_SLICES:
        print(f"generating {N_SLICES} slices of {SIZE}x{SIZE} in {folder} ...", flush=True)
        make_series(folder)
    medview_load(folder)
    sitk_load(folder)  # warm the page cache for both
    t_medview, vol = time_best(lambda: medview_load(folder))
    t_sitk, img = time_best(lambda: sitk_load(folder))
    import SimpleITK as sitk

    same = np.array_equal(vol.array, sitk.GetArrayFromImage(img))
    mb = vol.array.nbytes / 1e6
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(folder)], capture_output=True, text=True,
                         check=True).stdout.split()
    rss, nbytes = int(out[0]), int(out[1])
    print(f"series: {N_SLICES} x {SIZE}x{SIZE} int16 CT, {mb:.0f} MB of voxels, files shuffled")
    print(f"medview.io load_volume : {t_medview:.3f} s ({mb / t_medview:.0f} MB/s)  dtype={vol.array.dtype}")
    print(f"SimpleITK series reader: {t_sitk:.3f} s ({mb / t_sitk:.0f} MB/s)  (Int16 output, GDCM sort)")
    print(f"identical voxels: {same}")
    print(f"peak RSS above baseline: {rss / 1e6:.0f} MB = {rss / nbytes:.2f} x the volume's bytes (goal <= 2)")
    print(f"ratio={t_medview / t_sitk:.2f}")


if __name__ == "__main__":
    main()

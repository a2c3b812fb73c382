"""Series grouping, sorting, geometry warnings and non-DICOM formats on real and made-up files."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from PIL import Image

from medview.io import load_series, load_volume, save_volume, scan
from medview.io.volume import Volume

PYDICOM_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")


@pytest.fixture
def t1_series(shared_data):
    folder = shared_data / "dicom" / "mr-brain-tcia" / "Study3" / "11-T1post-18670"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


def _copy(folder, dst, edit=None):
    dst.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(os.listdir(folder))):
        ds = pydicom.dcmread(os.path.join(folder, f))
        if edit is not None:
            if edit(i, ds) is False:
                continue
        ds.save_as(dst / f)
    return dst


def test_mr_brain_tcia_has_two_studies_and_all_series(shared_data):
    index = scan(shared_data / "dicom" / "mr-brain-tcia")
    assert len(index.studies()) == 2
    assert len(index.series) == 10
    assert sorted({s.description for s in index.series}) == ["FLAIR_reg", "HippoCrop", "T1post", "T1pre_reg",
                                                             "T2_reg"]
    assert index.problems == []


def test_oblique_series_geometry_and_sorting(t1_series):
    vol = load_volume(t1_series)
    assert vol.shape == (22, 320, 280)
    ds0 = pydicom.dcmread(next(t1_series.iterdir()), stop_before_pixels=True)
    iop = np.array(ds0.ImageOrientationPatient, float)
    assert np.allclose(vol.direction[:, 0], iop[:3], atol=1e-6)
    assert np.allclose(vol.direction[:, 1], iop[3:], atol=1e-6)
    assert np.allclose(vol.direction[:, 2], np.cross(iop[:3], iop[3:]), atol=1e-6)
    # each slice lands where its own ImagePositionPatient says, and pixels equal pydicom's
    for k, path in enumerate(vol.meta["source_files"]):
        ds = pydicom.dcmread(path)
        assert np.allclose(vol.index_to_world([0, 0, k]), np.array(ds.ImagePositionPatient, float), atol=1e-3)
        assert np.array_equal(vol.array[k], ds.pixel_array)
    assert vol.spacing[:2] == pytest.approx((float(ds0.PixelSpacing[1]), float(ds0.PixelSpacing[0])))
    assert vol.warnings == []


def test_shuffled_file_names_do_not_change_the_volume(t1_series, tmp_path):
    names = sorted(os.listdir(t1_series))
    dst = tmp_path / "shuffled"
    dst.mkdir()
    for i, name in enumerate(names):
        shutil.copy(t1_series / name, dst / f"x{(i * 7) % len(names):03d}.dcm")
    a, b = load_volume(t1_series), load_volume(dst)
    assert np.array_equal(a.array, b.array) and np.allclose(a.affine, b.affine)


def test_missing_slice_is_loaded_with_a_warning(t1_series, tmp_path):
    vol = load_volume(_copy(t1_series, tmp_path / "gap", lambda i, ds: i != 10))
    assert vol.shape[0] == 22 and len(vol.meta["missing_planes"]) == 1  # the gap stays an (empty) plane
    assert any("1 slice(s) missing between z=" in w for w in vol.warnings)


def test_gantry_tilt_is_loaded_with_a_warning_and_sheared_geometry(t1_series, tmp_path):
    def tilt(i, ds):
        pos = np.array(ds.ImagePositionPatient, float)
        row = np.array(ds.ImageOrientationPatient[:3], float)
        k = int(ds.InstanceNumber)
        ds.ImagePositionPatient = [float(v) for v in pos + row * 0.8 * k]

    vol = load_volume(_copy(t1_series, tmp_path / "tilt", tilt))
    assert any("gantry tilt" in w for w in vol.warnings)
    for k, path in enumerate(vol.meta["source_files"]):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert np.allclose(vol.index_to_world([0, 0, k]), np.array(ds.ImagePositionPatient, float), atol=1e-2)


def test_mixed_sizes_and_orientations_split_into_series(t1_series, tmp_path):
    def mix(i, ds):
        if i % 2:
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]

    index = scan(_copy(t1_series, tmp_path / "mixed", mix))
    assert len(index.series) == 2
    assert all("orientation" in s.description for s in index.series)
    assert sorted(s.n_images for s in index.series) == [11, 11]


def test_echo_numbers_split_series(t1_series, tmp_path):
    def echoes(i, ds):
        ds.EchoNumbers = 1 + i % 2

    index = scan(_copy(t1_series, tmp_path / "echo", echoes))
    assert sorted(s.description for s in index.series) == ["T1post [echo 1]", "T1post [echo 2]"]


def test_middle_slice_first_and_progress(t1_series):
    index = scan(t1_series)
    seen, stages = [], []
    vol = load_series(index.series[0], progress=lambda f, s: stages.append(f),
                      on_middle_slice=lambda k, img: seen.append((k, img.copy())))
    assert seen and seen[0][0] == 11
    assert np.array_equal(seen[0][1], vol.array[11])
    assert stages[-1] == 1.0 and stages == sorted(stages)


def test_compressed_and_big_endian_match_uncompressed():
    ref = load_volume(os.path.join(PYDICOM_FILES, "MR_small.dcm"))
    for name in ("MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm",
                 "MR_small_implicit.dcm"):
        other = load_volume(os.path.join(PYDICOM_FILES, name))
        assert np.array_equal(ref.array, other.array), name
        assert np.allclose(ref.affine, other.affine), name


def test_rgb_dicom_is_rgb_and_multiframe_stacks():
    rgb = load_volume(os.path.join(PYDICOM_FILES, "SC_rgb_rle_2frame.dcm"))
    assert rgb.is_rgb and rgb.shape == (2, 100, 100) and rgb.array.dtype == np.uint8
    # the first row of this test image is pure red
    assert tuple(rgb.array[0, 0, 0]) == (255, 0, 0)


def test_dicomdir(tmp_path):
    src = os.path.join(PYDICOM_FILES, "dicomdirtests")
    index = scan(os.path.join(src, "DICOMDIR"))
    assert index.problems == [] and sum(s.n_images for s in index.series) > 20  # records -> real images
    assert all(os.path.exists(f) for s in index.series for f in s.files)


def test_png_grey_and_rgb_open_as_one_slice(tmp_path):
    grey = np.arange(60 * 40, dtype=np.uint8).reshape(60, 40)
    Image.fromarray(grey).save(tmp_path / "g.png")
    rgb = np.zeros((30, 20, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[5, 7] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    g = load_volume(tmp_path / "g.png")
    c = load_volume(tmp_path / "c.png")
    assert g.shape == (1, 60, 40) and not g.is_rgb and np.array_equal(g.array[0], grey)
    assert c.is_rgb and c.shape == (1, 30, 20) and tuple(c.array[0, 5, 7]) == (1, 2, 3)
    assert g.meta["pixel_size_known"] is False


def test_real_jpeg_and_tiff(shared_data):
    jpg = sorted((shared_data / "dermoscopy-ph2" / "images").glob("*.jpg"))[0]
    v = load_volume(jpg)
    assert v.is_rgb and v.shape[0] == 1
    tif = sorted((shared_data / "fundus-drive" / "training" / "images").glob("*.tif"))[0]
    v = load_volume(tif)
    assert v.is_rgb and v.shape == (1, 584, 565)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_volume_file_round_trip_keeps_geometry(tmp_path, suffix):
    direction = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # non-identity
    arr = np.random.default_rng(0).integers(-1000, 1000, (5, 6, 7)).astype(np.int16)
    vol = Volume(arr, (0.5, 0.75, 2.5), (10.0, -20.0, 30.0), direction, {})
    save_volume(vol, tmp_path / f"v{suffix}")
    back = load_volume(tmp_path / f"v{suffix}")
    assert back.same_geometry(vol)
    assert np.array_equal(back.array, arr)


def test_hippocampus_nifti_world_matches_nibabel(shared_data):
    import nibabel as nib

    path = sorted((shared_data / "mr-hippocampus" / "images").glob("*.nii.gz"))[0]
    vol = load_volume(path)
    ras = np.diag([-1, -1, 1, 1]) @ vol.affine
    assert np.allclose(ras, nib.load(str(path)).affine, atol=1e-4)


def test_cli_info_on_mr_brain(shared_data):
    out = subprocess.run([sys.executable, "-m", "medview", "info", str(shared_data / "dicom" / "mr-brain-tcia")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "2 patient(s), 2 stud(ies), 10 series, 0 problem file(s)"
    assert out.stdout.count("HippoCrop") == 2 and "0.688x0.688x6.5" in out.stdout


def test_cli_info_shows_paths_and_nifti_size_and_spacing(tmp_path):
    import nibabel as nib

    p = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((12, 10, 7), np.int16), np.diag([0.5, 0.75, 3.0, 1.0])), str(p))
    out = subprocess.run([sys.executable, "-m", "medview", "info", str(p)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    row = out.stdout.splitlines()[-1]
    assert "12x10x7" in row and "0.5x0.75x3" in row and str(p) in row


def test_cli_info_into_a_closed_pipe_exits_cleanly(tmp_path):
    for i in range(700):  # > 64 KiB of rows: the pipe fills after the reader has gone
        (tmp_path / f"img{i:03d}.png").write_bytes(_png_bytes())
    proc = subprocess.run(f"'{sys.executable}' -m medview info '{tmp_path}' | head -1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines() == [proc.stdout.splitlines()[0]] and "700 series" in proc.stdout
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_unreadable_files_beside_a_series_are_a_warning(tmp_path):
    from medview.config import sample_study_dir

    src = sample_study_dir() / "study" / "HippoCrop"
    if not src.is_dir():
        pytest.skip(f"no sample series at {src}")
    shutil.copytree(src, tmp_path / "s")
    broken = tmp_path / "s" / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI")  # a DICOM marker, then nothing
    vol = load_volume(tmp_path / "s")
    assert any("could not be read" in w and "broken.dcm" in w for w in vol.warnings), vol.warnings

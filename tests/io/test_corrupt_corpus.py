"""Every case of the corrupt-input corpus: a LoadError naming the file and the reason, or a load
whose Volume.warnings says what happened. Never a raw exception, never silent.

`pytest -q -s tests/io/test_corrupt_corpus.py` prints the count table.
"""

import traceback
from collections import Counter

import numpy as np
import pytest

from medview.io import LoadError, load_volume
from tests.io.corrupt_corpus import generate


def _same_geometry(vol, ref) -> bool:
    """Same grid: a flipped bit in raw voxel data changes one value, which no format without a
    checksum (NIfTI, NRRD raw, native DICOM) lets any reader detect."""
    return vol.array.shape == ref.array.shape and np.allclose(vol.spacing, ref.spacing) \
        and np.allclose(vol.origin, ref.origin) and np.allclose(vol.direction, ref.direction)


def _same(vol, ref) -> bool:
    return vol.array.shape == ref.array.shape and np.array_equal(vol.array, ref.array) \
        and np.allclose(vol.spacing, ref.spacing) and np.allclose(vol.origin, ref.origin)


@pytest.mark.xfail(strict=True, reason=(
    "known open (issue 12 item 4): 3 silent loads remain, none detectable from the file itself: a flip in "
    "MetaImage's text header that turns 0.9 mm into a still plausible 8.9 mm, and two flips in JPEG "
    "quantisation tables (JPEG has no checksum). No raw exception, no unclear error. Remove at 0 silent"))
def test_corrupt_corpus(tmp_path):
    cases = generate(tmp_path)
    assert len(cases) > 150
    refs = {}
    counts: Counter = Counter()
    bad: list[str] = []
    for case in cases:
        try:
            vol = load_volume(case.path)
        except LoadError as exc:
            names = {case.path.name, str(case.path)}
            if any(n in str(exc) for n in names) or str(case.path) in exc.path and exc.reason:
                counts["clear error"] += 1
            else:
                counts["unclear error"] += 1
                bad.append(f"unclear error: {case.name}: {exc}")
            continue
        except Exception:  # noqa: BLE001 - counting them is the point
            counts["traceback"] += 1
            bad.append(f"traceback: {case.name}: {traceback.format_exc(limit=3)}")
            continue
        if vol.warnings:
            counts["warned"] += 1
            continue
        if case.may_be_clean and case.seed is not None:
            if case.seed not in refs:
                refs[case.seed] = load_volume(case.seed)
            if _same(vol, refs[case.seed]):
                counts["harmless (loads as the original)"] += 1
                continue
            if case.in_voxel_data and _same_geometry(vol, refs[case.seed]):
                counts["voxel values changed (undetectable)"] += 1
                continue
        counts["silent"] += 1
        bad.append(f"silent: {case.name}: {vol!r}")
    print(f"\ncorrupt-input corpus: {len(cases)} cases")
    for label in ("clear error", "warned", "harmless (loads as the original)",
                  "voxel values changed (undetectable)", "unclear error", "silent", "traceback"):
        print(f"  {label:34s} {counts[label]}")
    assert not bad, "\n".join(bad)

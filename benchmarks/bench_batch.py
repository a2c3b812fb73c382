"""Campaign batch speed: Dask workers against a bare loop over the same job function, and the
time to resume a batch killed halfway.

    .venv/bin/python benchmarks/bench_batch.py [--cases 200] [--model breast-us] [--source DIR]

Cases: the first ``--cases`` BUSI ultrasound images from ``$MEDVIEW_DATA/us-breast-busi`` (real
2D cases for the bundled ``breast-us`` classifier); without the data, as many synthetic 256x256
grey PNGs (the model runs on them all the same). One run measures, each into a fresh folder:

  bare       ``for case in cases: run_case(case, job)`` in this process, torch on all cores
  workers 1  ``run_batch(..., workers=1)``: a LocalCluster with one worker process (all cores)
  workers 2  ``run_batch(..., workers=2)``: two worker processes, cores split between them

Each time is wall clock from the call to the last output, cluster start and the workers' torch
import included (what a user waits for). Then ``medview infer ... --workers 2`` runs in a
subprocess that is killed (its whole process group) once half the cases are finished, and
``--resume`` finishes the batch: its time, how many cases it skipped and ran, and whether any
finished case was redone (their case.json must be untouched).

Last line: ``ratio=<workers 2 cases/s / bare loop cases/s>``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sources(n: int, source: str | None, tmp: Path) -> tuple[list[Path], str]:
    from medview.config import data_dir

    if source:
        files = sorted(p for p in Path(source).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        return files[:n], f"{min(n, len(files))} images from {source}"
    busi = data_dir() / "us-breast-busi"
    files = sorted(p for p in busi.glob("*/*.png") if "_mask" not in p.name) if busi.is_dir() else []
    if len(files) >= n:
        return files[:n], f"{n} BUSI images ({busi})"
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp / "synthetic"
    folder.mkdir()
    out = []
    for i in range(n):
        p = folder / f"case{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8)).save(p)
        out.append(p)
    return out, f"{n} synthetic 256x256 PNGs (no BUSI data at {busi})"


def _link_folder(files: list[Path], folder: Path) -> Path:
    """One folder holding the cases (symlinks), for the CLI run that gets killed."""
    folder.mkdir()
    for i, f in enumerate(files):
        (folder / f"{i:04d}_{f.name.replace(' ', '_')}").symlink_to(f.resolve())
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--model", default="breast-us")
    ap.add_argument("--source", default=None, help="a folder of PNG/JPEG images instead of BUSI")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from medview.campaign import batch, cases
    from medview.inference.package import find_package

    pkg = find_package(args.model)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as td:
        tmp = Path(td)
        files, what = _sources(args.cases, args.source, tmp)
        folder = _link_folder(files, tmp / "in")
        found, problems = cases.discover(folder)
        n = len(found)
        print(f"{what}; model {pkg.id} {pkg.version}; {cores} cores; device {args.device}")

        def job(name: str, **kw):
            return batch.make_job(pkg, tmp / name, device=args.device, unverified_ok=True, **kw)

        rates = {}
        # bare loop: the same job function, one process, torch on all cores
        torch.set_num_threads(cores)
        j = job("bare", threads=cores)
        t0 = time.perf_counter()
        recs = [batch.run_case(c, j) for c in found]
        t = time.perf_counter() - t0
        bad = sum(r["status"] != "ok" for r in recs)
        rates["bare"] = n / t
        print(f"bare loop:  {n} cases in {t:7.2f} s = {rates['bare']:6.2f} cases/s ({bad} failed)")
        for w in (1, 2):
            t0 = time.perf_counter()
            res = batch.run_batch(found, job(f"w{w}"), workers=w)
            t = time.perf_counter() - t0
            rates[w] = n / t
            print(f"workers {w}:  {n} cases in {t:7.2f} s = {rates[w]:6.2f} cases/s ({res.counts.failed} failed; "
                  f"{res.where})")

        # kill a CLI batch halfway, then resume it
        out = tmp / "killed"
        cmd = [sys.executable, "-m", "medview", "infer", "--model", str(pkg.path), str(folder), "--out", str(out),
               "--workers", "2", "--unverified-ok", "--device", args.device]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def finished() -> int:
            return sum(1 for _ in out.glob("*/case.json")) if out.is_dir() else 0

        while finished() < n // 2 and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        t_killed = time.perf_counter() - t0
        before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/case.json")}
        t0 = time.perf_counter()
        res = batch.run_batch(found, job("killed", resume=True), workers=2)
        t_resume = time.perf_counter() - t0
        redone = sum(1 for name, m in before.items() if (out / name / "case.json").stat().st_mtime_ns != m)
        print(f"killed after {t_killed:.2f} s with {len(before)}/{n} cases finished; resume (workers 2): "
              f"{t_resume:.2f} s, skipped {res.counts.skipped}, ran {res.counts.done}, failed {res.counts.failed}, "
              f"finished cases redone: {redone}")
        print(f"workers 2 / workers 1 = {rates[2] / rates[1]:.3f}; workers 1 / bare = {rates[1] / rates['bare']:.3f}")
        print(f"ratio={rates[2] / rates['bare']:.3f}")
    return 0


if __name__ == "__main__":  # the guard LocalCluster's spawned workers need
    sys.exit(main())

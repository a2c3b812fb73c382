"""Batch inference over many cases as Dask tasks (``medview infer`` on a folder, "Run on all").

One task per case, all around the same job function, ``run_case``: it loads the case, runs
``medview.inference.pipeline.run_model`` on it and writes the outputs. ``run_case`` never raises:
a failing case becomes a record with the reason and the others go on. The outputs of a case are
written into a hidden folder and renamed into place as a whole, with ``case.json`` (model id,
version, weights sha256, options, input sha256, result, uncertainty score) inside, so an output
folder is either complete or absent. ``resume=True`` skips a case whose ``case.json`` names the
same model version, weights, options and input hash.

Where the tasks run: a ``distributed.LocalCluster`` (one single-threaded worker process per
core by default; torch threads split between the workers) or, with ``scheduler=ADDRESS``, a
running Dask scheduler and the workers a site started on its machines (docs/CAMPAIGNS.md).
``run_case`` is a plain function too: the benchmark's bare loop calls it directly.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from medview.campaign.cases import Case, input_hash
from medview.progress import CancelledFn, ProgressFn

RECORD = "case.json"
PARTIAL = ".partial"  # where a case's outputs are written before they are renamed into place


@dataclass(frozen=True)
class Job:
    """What to run on every case (plain data: it is pickled to the workers)."""

    model: str  # package folder; a worker without it looks the id up in its own model folders
    model_id: str
    model_version: str
    model_sha256: str
    out_root: str
    device: str | None = None
    tta: bool = False
    cam: str | None = None
    cam_class: str | None = None
    batch_size: int | None = None
    unverified_ok: bool = False
    resume: bool = False
    threads: int | None = None  # torch threads per task (None: cores / tasks per worker)
    rank_method: str = "entropy"
    run_options: tuple[tuple[str, Any], ...] = ()  # further run_model keywords, as (name, value) pairs

    @property
    def options(self) -> dict[str, Any]:
        """The options that change the outputs (a resumed case must have run with the same)."""
        return {"tta": self.tta, "cam": self.cam, "cam_class": self.cam_class, "device": self.device or "auto",
                "unverified_ok": self.unverified_ok, **dict(self.run_options)}

    @property
    def model_record(self) -> dict[str, str]:
        return {"id": self.model_id, "version": self.model_version, "sha256": self.model_sha256}


def make_job(package, out_root: str | Path, **options: Any) -> Job:
    return Job(model=str(package.path), model_id=package.id, model_version=package.version,
               model_sha256=package.sha256, out_root=str(out_root), **options)


# ---------------------------------------------------------------------------------------------
# the job function (runs on a worker, or in this process)
# ---------------------------------------------------------------------------------------------
_PACKAGES: dict[tuple[str, str], Any] = {}
_PACKAGES_LOCK = threading.Lock()


def _package(job: Job):
    """The job's package in this process (validated once per worker), the same weights or none."""
    from medview.inference.package import PackageError, find_package, validate

    key = (job.model, job.model_sha256)
    with _PACKAGES_LOCK:
        pkg = _PACKAGES.get(key)
        if pkg is None:
            folder = Path(job.model)
            pkg = validate(folder) if (folder / "model.json").is_file() else find_package(job.model_id)
            if not pkg.ok:
                raise PackageError(f"model package {pkg.path} is unusable: {pkg.reason}")
            if pkg.sha256 != job.model_sha256:
                raise PackageError(f"model {job.model_id} at {pkg.path} has other weights (sha256 "
                                   f"{pkg.sha256[:12]}, the batch runs {job.model_sha256[:12]})")
            _PACKAGES[key] = pkg
    return pkg


def _torch_threads(job: Job) -> None:
    """Torch threads for this task: the job's count (a LocalCluster: cores / workers). Left
    alone when None: a Dask nanny starts its workers with OMP_NUM_THREADS=1, so a site's
    `dask worker --nworkers N --nthreads 1` gives each task one torch thread already."""
    if job.threads is None:
        return
    import torch

    if torch.get_num_threads() != job.threads:
        torch.set_num_threads(job.threads)


def read_record(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None


def is_done(record: dict[str, Any] | None, job: Job, digest: str) -> bool:
    return bool(record and record.get("status") == "ok" and record.get("model") == job.model_record
                and record.get("options") == job.options and record.get("input_sha256") == digest)


def _publish(tmp: Path, out_dir: Path) -> None:
    """Rename a finished output folder into place (replacing an older one) in two renames."""
    old = None
    if out_dir.exists():
        old = tmp.with_name(tmp.name + ".old")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _result_text(pred) -> str:
    from medview.inference.prediction import label_size_text

    text = pred.top_class or ", ".join(f"{i['name']} {label_size_text(i)}" for i in pred.label_info)
    if pred.grading:  # a grade on its scale, with its value and flag
        from medview.inference.grading import grade_text

        text = grade_text(pred.grading)
    return text + ("" if pred.input_verified else "  (input not verified)")


def run_case(case: Case, job: Job) -> dict[str, Any]:
    """Run the job on one case and write its outputs atomically. Never raises: a failure is a
    record with ``status: failed`` and a one-line reason."""
    t0 = time.perf_counter()
    out_root = Path(job.out_root)
    out_dir = out_root / case.name
    rec: dict[str, Any] = {"case": case.name, "label": case.label, "path": case.path, "out": str(out_dir)}
    try:
        digest = input_hash(case)
        rec["input_sha256"] = digest
        if job.resume:
            done = read_record(out_dir)
            if is_done(done, job, digest):
                return {**done, "status": "skipped", "seconds": round(time.perf_counter() - t0, 4)}
        from medview.inference import outputs
        from medview.inference.pipeline import run_model
        from medview.io import load_series

        _torch_threads(job)
        pkg = _package(job)
        volume = load_series(case.series)
        pred = run_model(pkg, volume, device=job.device, cam=job.cam, cam_class=job.cam_class, tta=job.tta,
                         batch_size=job.batch_size, unverified_ok=job.unverified_ok, **dict(job.run_options))
        from medview.campaign.rank import score_prediction

        tmp = out_root / PARTIAL / f"{case.name}.{uuid.uuid4().hex[:8]}"
        files = outputs.write_outputs(pred, tmp, volume)
        rec.update({"status": "ok", "model": job.model_record, "options": job.options, "files": files,
                    "result": _result_text(pred), "input_verified": pred.input_verified,
                    "input": pred.input, "device": pred.device, "messages": list(pred.messages),
                    "uncertainty": score_prediction(pred, job.rank_method),
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        if pred.probabilities:
            rec["probabilities"] = {k: round(float(v), 6) for k, v in pred.probabilities.items()}
        rec["seconds"] = round(time.perf_counter() - t0, 4)
        (tmp / RECORD).write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")
        _publish(tmp, out_dir)
        return rec
    except Exception as exc:  # noqa: BLE001 - one case failing never stops the others
        from medview.inference.outputs import one_line

        reason = one_line(exc)
        rec.update({"status": "failed", "reason": reason if case.path in reason else f"{case.path}: {reason}",
                    "seconds": round(time.perf_counter() - t0, 4)})
        return rec


# ---------------------------------------------------------------------------------------------
# the batch
# ---------------------------------------------------------------------------------------------
@dataclass
class Counts:
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def per_second(self) -> float:
        return self.finished / max(time.perf_counter() - self.started, 1e-9)

    def add(self, rec: dict[str, Any]) -> None:
        status = rec.get("status")
        if status == "ok":
            self.done += 1
        elif status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1

    def text(self) -> str:
        return (f"[{self.finished}/{self.total}] done {self.done}, failed {self.failed}, skipped {self.skipped}, "
                f"{self.per_second:.2f} cases/s")


@dataclass
class BatchResult:
    records: list[dict[str, Any]]
    counts: Counts
    seconds: float
    where: str  # "LocalCluster (2 workers x 1 thread)" or the scheduler address
    cancelled: bool = False


def _local_cluster(workers: int):
    import logging

    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        scheduler_port=0, silence_logs=logging.ERROR)


def run_batch(cases: list[Case], job: Job, *, problems: list[tuple[str, str]] | None = None,
              workers: int | None = None, scheduler: str | None = None,
              on_record: Callable[[dict[str, Any], Counts], None] | None = None,
              progress: ProgressFn | None = None, cancelled: CancelledFn | None = None) -> BatchResult:
    """Run ``job`` on every case as Dask tasks; returns every case's record (the scan's
    ``problems`` first, as failed cases) and writes ``batch.json`` + ``batch.csv``.

    ``workers``: local worker processes (default: one per core); ``scheduler``: the address of a
    running Dask scheduler instead (its workers need MedView and access to the same paths).
    ``on_record(record, counts)`` is called as each case finishes; ``cancelled()`` stops it
    (unstarted cases are dropped; finished outputs stay and ``--resume`` goes on from them)."""
    import dask
    from distributed import Client, as_completed

    out_root = Path(job.out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_root / PARTIAL, ignore_errors=True)  # outputs of a killed run: never published
    records: list[dict[str, Any]] = [{"case": p, "label": p, "path": p, "status": "failed", "reason": f"{p}: {why}"}
                                     for p, why in problems or []]
    counts = Counts(total=len(cases) + len(records))
    for rec in records:
        counts.add(rec)
        if on_record:
            on_record(rec, counts)
    t0 = time.perf_counter()
    cluster = None
    n_workers = max(1, workers or os.cpu_count() or 1)
    if scheduler:
        where = f"Dask scheduler {scheduler}"
    else:
        where = f"LocalCluster ({n_workers} worker{'s' if n_workers > 1 else ''} x 1 thread)"
        if job.threads is None:
            job = dataclasses.replace(job, threads=max(1, (os.cpu_count() or 1) // n_workers))
    was_cancelled = False
    last_write = time.monotonic()
    # a worker that dies on a case (segfault, out of memory) fails that case, not the batch
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = None if scheduler else _local_cluster(n_workers)
        try:
            with Client(scheduler or cluster) as client:
                futures = [client.submit(run_case, c, job, key=f"case-{i}-{c.name}", pure=False)
                           for i, c in enumerate(cases)]
                by_key = {f.key: c for f, c in zip(futures, cases, strict=True)}
                for fut in as_completed(futures):
                    try:
                        rec = fut.result()
                    except Exception as exc:  # noqa: BLE001 - the worker itself died on this case
                        c = by_key[fut.key]
                        rec = {"case": c.name, "label": c.label, "path": c.path, "status": "failed",
                               "reason": f"{c.path}: the worker running it stopped ({type(exc).__name__}: {exc})"}
                    records.append(rec)
                    counts.add(rec)
                    if on_record:
                        on_record(rec, counts)
                    if progress:
                        progress(counts.finished / max(counts.total, 1), counts.text())
                    if time.monotonic() - last_write > 10:  # a killed batch still says how far it got
                        write_summary(out_root, job, records, time.perf_counter() - t0, where)
                        last_write = time.monotonic()
                    if cancelled is not None and cancelled():
                        was_cancelled = True
                        client.cancel([f for f in futures if not f.done()])
                        break
        finally:
            if cluster is not None:
                cluster.close()
    seconds = time.perf_counter() - t0
    order = {c.name: i for i, c in enumerate(cases)}
    records.sort(key=lambda r: order.get(r["case"], -1))
    write_summary(out_root, job, records, seconds, where)
    return BatchResult(records, counts, seconds, where, was_cancelled)


CSV_FIELDS = ("case", "path", "status", "result", "uncertainty", "seconds", "out", "reason")


def write_summary(out_root: Path, job: Job, records: list[dict[str, Any]], seconds: float, where: str) -> None:
    """batch.json (every case) and batch.csv (one line per case), each written atomically."""
    failed = sum(1 for r in records if r.get("status") == "failed")
    skipped = sum(1 for r in records if r.get("status") == "skipped")
    js = {"model": job.model_record, "options": job.options, "where": where, "total_s": round(seconds, 3),
          "ok": len(records) - failed - skipped, "skipped": skipped, "failed": failed, "cases": records}
    path = out_root / "batch.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(js, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    path = out_root / "batch.csv"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in records:
            unc = (r.get("uncertainty") or {}).get("score")
            w.writerow([r.get("case", ""), r.get("path", ""), r.get("status", ""), r.get("result", ""),
                        "" if unc is None else f"{unc:.6f}", r.get("seconds", ""), r.get("out", ""),
                        r.get("reason", "")])
    os.replace(tmp, path)


class TextProgress:
    """``on_record`` for a terminal: a line per finished case (result or reason) on stdout /
    stderr, and the counts (done / failed / skipped / cases per second) on stderr."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def __call__(self, rec: dict[str, Any], counts: Counts) -> None:
        status = rec.get("status")
        head = f"[{counts.finished}/{counts.total}]"
        if self.tty:
            self.stream.write("\r\x1b[2K")
        if status == "failed":
            self.stream.write(f"{head} error: {rec.get('reason')}\n")
        else:
            tag = "skipped (done before)" if status == "skipped" else f"[{rec.get('device', '')}, " \
                                                                     f"{rec.get('seconds', 0):.2f} s]"
            print(f"{head} {rec.get('label') or rec['case']}: {rec.get('result', '')}  {tag} -> {rec.get('out')}",
                  flush=True)
        bar_n = int(30 * counts.finished / max(counts.total, 1))
        line = f"{head} [{'#' * bar_n}{'.' * (30 - bar_n)}] {counts.text().split('] ', 1)[1]}"
        self.stream.write(line if self.tty else line + "\n")
        if self.tty and counts.finished >= counts.total:
            self.stream.write("\n")
        self.stream.flush()

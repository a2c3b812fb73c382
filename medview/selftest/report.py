"""Self-test results: one Check per step, the Report table, and running one step."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    name: str
    status: str
    seconds: float
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status != FAIL for c in self.checks)

    def add(self, name: str, status: str, seconds: float, detail: str = "") -> Check:
        c = Check(name, status, float(seconds), detail)
        self.checks.append(c)
        return c

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "status": c.status, "seconds": round(c.seconds, 3), "detail": c.detail}
                       for c in self.checks],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        w = max([len(c.name) for c in self.checks] + [5])
        lines = [f"{'check':<{w}}  result  time (s)  detail", f"{'-' * w}  ------  --------  {'-' * 40}"]
        for c in self.checks:
            lines.append(f"{c.name:<{w}}  {c.status:<6}  {c.seconds:8.2f}  {c.detail}")
        n_fail = sum(c.status == FAIL for c in self.checks)
        n_skip = sum(c.status == SKIP for c in self.checks)
        n_pass = sum(c.status == PASS for c in self.checks)
        total = sum(c.seconds for c in self.checks)
        lines.append(f"{'-' * w}  ------  --------")
        lines.append(f"{'total':<{w}}  {'PASS' if self.ok else 'FAIL':<6}  {total:8.2f}  "
                     f"{n_pass} passed, {n_fail} failed, {n_skip} skipped")
        return "\n".join(lines)


def short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < 300 else text[:297] + "..."


def step(report: Report, name: str, fn: Callable[[], tuple[str, str] | str], say: Callable[[str], None]) -> Check:
    """Run one check; an exception is a FAIL whose detail names it (the traceback goes to the log)."""
    import logging

    say(f"... {name}")
    t0 = time.perf_counter()
    try:
        res = fn()
        status, detail = (PASS, res) if isinstance(res, str) else res
    except Exception as exc:  # noqa: BLE001 - a self-test reports every failure, it does not stop
        logging.getLogger("medview.selftest").error("%s failed\n%s", name, traceback.format_exc())
        status, detail = FAIL, short(exc)
    c = report.add(name, status, time.perf_counter() - t0, detail)
    say(f"    {c.status} ({c.seconds:.2f} s) {c.detail}")
    return c

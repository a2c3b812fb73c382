"""Self-test of the installation itself: build info, torch and device, log file, and (frozen app)
that every library came from the app folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from medview.selftest.report import FAIL, PASS, Report


def build_info() -> dict[str, Any]:
    """build_info.json written by packaging/medview.spec (frozen app), else the source version."""
    from medview import __version__

    root = getattr(sys, "_MEIPASS", None)
    if root:
        try:
            return json.loads((Path(root) / "build_info.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    return {"version": __version__, "revision": "source checkout"}


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(stat[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def headless_qt() -> str:
    """Make Qt headless unless the caller chose a platform; returns the platform name."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return os.environ["QT_QPA_PLATFORM"]



def check_environment(report: Report, device: str | None, state: dict) -> str:
    import platform

    from medview import app_logging

    info = build_info()
    state["build"] = info
    import torch

    from medview.inference import device as devmod

    st = app_logging.log_gpu_status()
    dev = devmod.choose_device(device)
    state["device"] = dev
    line = (f"MedView {info.get('version')} ({info.get('revision', '?')}), Python {platform.python_version()}, "
            f"torch {torch.__version__}, device {devmod.describe(dev)}")
    report.notes.append(line)
    report.notes.append(st.message)
    problems = []
    if getattr(sys, "frozen", False):
        import medview

        bundle = Path(getattr(sys, "_MEIPASS", "")).resolve()
        report.notes.append(f"frozen app in {bundle}")
        if not Path(medview.__file__).resolve().is_relative_to(bundle):
            problems.append(f"medview was imported from {medview.__file__}, outside the app folder")
    lf = app_logging.log_file()
    report.notes.append(f"log file: {lf}")
    detail = f"{devmod.describe(dev)}; {st.message}"
    if lf.parent.is_dir() and not lf.is_file():
        problems.append(f"no log file at {lf}")
    return (FAIL, detail + "; " + "; ".join(problems)) if problems else (PASS, detail)


def loaded_libraries() -> list[str]:
    """Shared libraries mapped into this process (Linux /proc/self/maps)."""
    libs = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and ".so" in parts[5] and parts[5].startswith("/"):
            libs.add(parts[5].strip())
    return sorted(libs)


def check_self_contained() -> tuple[str, str]:
    """Frozen app: every Python package library loaded came from the app folder (none from a
    build venv or site-packages that happens to exist on this machine)."""
    bundle = Path(getattr(sys, "_MEIPASS", "")).resolve()
    libs = loaded_libraries()
    inside = [p for p in libs if Path(p).resolve().is_relative_to(bundle)]
    outside = [p for p in libs if p not in inside]
    marks = ("site-packages", "dist-packages", "/.venv/", "/lib-dynload/", "libpython")
    foreign = [p for p in outside if any(m in p for m in marks)]
    if foreign:
        return FAIL, f"{len(foreign)} libraries loaded from outside the app: " + ", ".join(foreign[:3])
    return PASS, f"{len(inside)} libraries from the app folder, {len(outside)} from the system"

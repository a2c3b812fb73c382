"""Check written DICOM files with dciodvfy (Debian/Ubuntu package dicom3tools), when installed."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Validation:
    path: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def dciodvfy_path() -> str | None:
    return shutil.which("dciodvfy")


def dciodvfy(path: str | Path, timeout: float = 60.0) -> Validation:
    """Run ``dciodvfy`` on one file; its "Error" lines are errors, "Warning" lines warnings."""
    exe = dciodvfy_path()
    if exe is None:
        raise FileNotFoundError("dciodvfy is not installed (apt install dicom3tools)")
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=timeout)
    out = Validation(Path(path))
    for line in (proc.stdout + proc.stderr).splitlines():
        if "Error" in line:
            out.errors.append(line.strip())
        elif "Warning" in line:
            out.warnings.append(line.strip())
    return out

"""A throw-away local Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``) for tests and the demo.

``python -m medview.pacs.orthanc [FOLDER...]`` starts one on loopback with its own config and
storage in a temporary folder (free HTTP and DICOM ports, DICOMweb on, a modality entry for our
AE), loads the folders (default: the sample study and ../shared/data/dicom/mr-brain-tcia), prints
the source addresses and runs until Ctrl-C, then stops it and removes its storage.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Optional

ORTHANC_BINARIES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
DICOMWEB_PLUGINS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                    "/usr/lib/orthanc/libOrthancDicomWeb.so")
SERVER_AET = "ORTHANC"


def orthanc_binary() -> Optional[str]:
    found = shutil.which("Orthanc")
    return found or next((p for p in ORTHANC_BINARIES if os.path.exists(p)), None)


def dicomweb_plugin() -> Optional[str]:
    return next((p for p in DICOMWEB_PLUGINS if os.path.exists(p)), None)


def missing_reason() -> Optional[str]:
    """Why a local Orthanc cannot run here (None when it can)."""
    if orthanc_binary() is None:
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)"
    if dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when we die, so a killed test run or
    demo never leaves an Orthanc behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalOrthanc:
    def __init__(self, our_aet: str = "MEDVIEW", move_port: Optional[int] = None,
                 users: Optional[dict[str, str]] = None):
        self.our_aet = our_aet
        self.users = dict(users or {})  # HTTP basic auth on (tests of credentials) when given
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.move_port = move_port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="medview-orthanc-"))
        self.process: Optional[subprocess.Popen] = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    @property
    def dimse_url(self) -> str:
        return f"dicom://{SERVER_AET}@127.0.0.1:{self.dicom_port}"

    def config(self) -> dict:
        return {
            "Name": "MedViewLocal", "StorageDirectory": str(self.workdir / "db"),
            "IndexDirectory": str(self.workdir / "db"), "HttpPort": self.http_port,
            "DicomPort": self.dicom_port, "DicomAet": SERVER_AET, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users), "RegisteredUsers": self.users, "HttpDescribeErrors": True,
            "Plugins": [dicomweb_plugin()], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "DicomModalities": {"medview": [self.our_aet, "127.0.0.1", self.move_port]},
            "DicomCheckCalledAet": False, "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True, "StorageCompression": False, "HttpThreadsCount": 8,
        }

    def start(self, timeout: float = 30.0) -> "LocalOrthanc":
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=2))
        log = open(self.workdir / "orthanc.log", "wb")  # noqa: SIM115 - kept open for the process
        self.process = subprocess.Popen([orthanc_binary(), str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.workdir, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited (code {self.process.returncode}); see "
                                   f"{self.workdir / 'orthanc.log'}")
            try:
                req = urllib.request.Request(f"{self.http_url}/system", headers=self._auth_header())
                with urllib.request.urlopen(req, timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer on port {self.http_port} within {timeout:g} s")

    def _auth_header(self) -> dict[str, str]:
        if not self.users:
            return {}
        import base64

        user, password = next(iter(self.users.items()))
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def upload(self, paths: Iterable[str | Path]) -> int:
        """POST every DICOM file under ``paths`` to /instances; returns how many were accepted."""
        n = 0
        for p in paths:
            p = Path(p)
            files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
            for f in files:
                data = f.read_bytes()
                if len(data) < 132 or data[128:132] != b"DICM":
                    continue
                req = urllib.request.Request(f"{self.http_url}/instances", data=data, method="POST",
                                             headers={"Content-Type": "application/dicom", **self._auth_header()})
                with urllib.request.urlopen(req, timeout=30) as r:
                    n += r.status == 200
        return n

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "LocalOrthanc":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def default_folders() -> list[Path]:
    from medview.config import data_dir, sample_study_dir

    out = [sample_study_dir()]
    tcia = data_dir() / "dicom" / "mr-brain-tcia"
    if tcia.exists():
        out.append(tcia)
    return out


LOCAL_SOURCES = ("local-web", "local-dimse")


def register_sources(server: "LocalOrthanc") -> Path:
    """Add (or update) 'local-web' and 'local-dimse' in the user's source settings."""
    from medview.pacs.source import SourceConfig, load_sources, save_sources

    sources = load_sources()
    sources["local-web"] = SourceConfig(name="local-web", kind="dicomweb", url=server.dicomweb_url)
    sources["local-dimse"] = SourceConfig(name="local-dimse", kind="dimse", host="127.0.0.1",
                                          port=server.dicom_port, called_aet=SERVER_AET,
                                          calling_aet=server.our_aet, retrieve="get")
    return save_sources(sources)


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    register = "--no-register" not in argv
    argv = [a for a in argv if a != "--no-register"]
    reason = missing_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    folders = [Path(a) for a in argv] or default_folders()
    missing = [f for f in folders if not f.exists()]
    if missing:
        print(f"error: {missing[0]}: no such folder", file=sys.stderr)
        return 2
    with LocalOrthanc() as server:
        n = server.upload(folders)
        print(f"Orthanc on loopback with {n} instance(s) from {', '.join(map(str, folders))}")
        print(f"  DICOMweb: {server.dicomweb_url}")
        print(f"  DIMSE:    {server.dimse_url}  (our AE {server.our_aet}, C-MOVE port {server.move_port})")
        if register:
            path = register_sources(server)
            print(f"  sources 'local-web' and 'local-dimse' saved in {path}")
        print("Ctrl-C stops it and removes its storage.", flush=True)
        try:
            while server.process and server.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

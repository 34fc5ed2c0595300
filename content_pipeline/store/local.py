"""The local-disk store: temp+fsync+rename replaces, temp+fsync+link create-if-absent (no lock), fsynced appends."""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import suppress
from pathlib import Path

from content_pipeline.errors import StoreError, StoreIOError
from content_pipeline.store.base import Appender, ObjectInfo, ObjectWriter, Store, check_key

_DIGESTS = ".digests"  # each object's content digest at its last version read (Store.digest)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _version(st: os.stat_result) -> str:
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


class LocalAppender(Appender):
    """O_APPEND writes of whole records, each followed by fsync before `append` returns."""

    def __init__(self, path: Path) -> None:
        created = not path.exists()
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            _fsync_dir(path.parent)
        self._lock = threading.Lock()

    def append(self, data: bytes) -> None:
        with self._lock:
            start = os.fstat(self._fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
            except OSError as exc:  # disk full, say: never leave half a record for the next one to glue onto
                os.ftruncate(self._fd, start)
                raise StoreIOError(f"cannot append to {self._path}: {exc.strerror}") from exc

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def discard(self) -> None:
        self.close()
        try:
            os.unlink(self._path)
            _fsync_dir(self._path.parent)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreIOError(f"cannot remove {self._path}: {exc.strerror}") from exc


class LocalWriter(ObjectWriter):
    """Writes a temp file beside the target; commit fsyncs it and renames it into place."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.abort()
            raise StoreIOError(f"cannot write {self._path}: {exc.strerror}") from exc

    def commit(self) -> None:
        self._place(exclusive=False)

    def commit_new(self) -> bool:
        """Link the fsynced temp file in as the target only if no target exists, in one atomic step and with
        no lock, so a writer frozen half-way (SIGSTOP, a paused VM) blocks nobody; False when it exists."""
        try:
            self._place(exclusive=True)
        except FileExistsError:
            return False
        return True

    def _place(self, *, exclusive: bool) -> None:
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            if exclusive:
                os.link(self._tmp, self._path)
                os.unlink(self._tmp)
            else:
                os.replace(self._tmp, self._path)
            _fsync_dir(self._path.parent)
        except FileExistsError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise StoreIOError(f"cannot write {self._path}: {exc.strerror}") from exc

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with suppress(FileNotFoundError):
            os.unlink(self._tmp)


class LocalStore(Store):
    """A store rooted at one local folder; keys are relative paths below it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.url = str(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store folder {self.root}: {exc.strerror}") from exc

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _parent(self, key: str) -> Path:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def get(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError as exc:
            raise StoreError(f"store key {key!r} is a folder, not an object") from exc
        except OSError as exc:
            raise StoreIOError(f"cannot read {key!r} from {self.root}: {exc.strerror}") from exc

    def get_range(self, key: str, start: int, end: int) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                fh.seek(start)
                return fh.read(max(0, end - start))
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise StoreIOError(f"cannot read {key!r} from {self.root}: {exc.strerror}") from exc

    def writer(self, key: str) -> ObjectWriter:
        try:
            return LocalWriter(self._parent(key))
        except OSError as exc:
            raise StoreIOError(f"cannot write {key!r} in {self.root}: {exc.strerror}") from exc

    def put(self, key: str, data: bytes) -> None:
        writer = self.writer(key)
        writer.write(data)
        writer.commit()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._parent(key)
        if path.exists():
            return False
        try:
            writer = LocalWriter(path)
        except OSError as exc:
            raise StoreIOError(f"cannot write {key!r} in {self.root}: {exc.strerror}") from exc
        writer.write(data)
        return writer.commit_new()

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def read_digest(self, info: ObjectInfo, keep: bool = True) -> str:
        """Kept beside the objects (`.digests/`, with the version it was taken at), so each version of an
        object is read for its digest once, not once per process; a copied store's objects once each."""
        side = self.root / _DIGESTS / hashlib.sha1(info.key.encode()).hexdigest()
        try:
            version, digest = side.read_text().split()
            if version == f"{info.version}/{info.size}":
                return digest
        except (OSError, ValueError):
            pass  # none kept yet, or for another version
        digest = super().read_digest(info)
        if keep:
            with suppress(OSError):  # a cache: a store that takes no write still answers
                side.parent.mkdir(exist_ok=True)
                tmp = side.with_name(f"{side.name}.tmp-{os.getpid()}-{threading.get_ident()}")
                tmp.write_text(f"{info.version}/{info.size} {digest}\n")
                os.replace(tmp, side)
        return digest

    def appender(self, key: str) -> Appender:
        return LocalAppender(self._parent(key))

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.root
        start = base / prefix.rstrip("/") if prefix else base
        scan = start if start.is_dir() else start.parent
        out: list[ObjectInfo] = []
        if not scan.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(scan):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue
                full = os.path.join(dirpath, name)
                key = os.path.relpath(full, base).replace(os.sep, "/")
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue
                out.append(ObjectInfo(key, st.st_size, _version(st), st.st_mtime))
        out.sort(key=lambda info: info.key)
        return out

    def truncate(self, key: str, size: int) -> None:
        path = self._path(key)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

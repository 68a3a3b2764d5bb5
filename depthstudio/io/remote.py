"""Inputs and outputs at object-store URLs (s3://, gs://, az://, file://...) through fsspec.

A batch whose inputs or output folder are URLs wraps its work in :class:`RemoteWork`: each item's
input is copied to a temporary folder, the unchanged per-item work runs on local files, and the
files it wrote are uploaded to the output URL one by one (an object appears only when its upload
completes, so a reader never sees half a file). Resume checks the objects at the output URL.
fsspec (and the store's package: s3fs, gcsfs, adlfs) are imported only when a URL is given.

    paths = list_inputs(["s3://bucket/photos/"])        # URLs of the images below that prefix
    work = RemoteWork(MeshWork(sections))
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from depthstudio.batch import BatchWork, Item
from depthstudio.errors import InputError, OutputError
from depthstudio.io.atomic import write_text

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(text) -> bool:
    return isinstance(text, str) and bool(_URL.match(text))


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for ``url``; one clear message when a package is missing."""
    try:
        import fsspec
    except ImportError:
        raise InputError(f"{url}: URLs need fsspec: pip install fsspec (and s3fs, gcsfs or adlfs for the store)") from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise InputError(f"{url}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{url}: {exc}") from None


def list_inputs(items: list[str], suffixes) -> list[str]:
    """URLs of the files among ``items``: a URL of a file, or of a folder/prefix (searched recursively)."""
    found: list[str] = []
    for item in items:
        fs, path = filesystem(item)
        try:
            if fs.isdir(path):
                names = sorted(p for p in fs.find(path) if PurePosixPath(p).suffix.lower() in suffixes)
                found += [_join_protocol(item, fs, p) for p in names]
            else:
                found.append(item)  # a missing one fails as that item
        except OSError as exc:
            raise InputError(f"{item}: cannot list ({exc})") from None
    return list(dict.fromkeys(found))


def _join_protocol(original: str, fs, path: str) -> str:
    url = fs.unstrip_protocol(path)
    if original.startswith("file://") and not url.startswith("file://"):
        url = "file://" + path
    return url


def url_path(url: str) -> PurePosixPath:
    """The path part of a URL, for stems and names (s3://b/x/y.jpg -> /b/x/y.jpg)."""
    return PurePosixPath("/" + url.split("://", 1)[1].lstrip("/"))


def join(url: str, name: str) -> str:
    return url.rstrip("/") + "/" + name


@dataclass
class RemoteWork(BatchWork):
    """``work`` on items whose input and/or output folder are URLs; the work itself sees local files."""

    work: BatchWork

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.work.what

    @property
    def unit(self) -> str:  # type: ignore[override]
        return self.work.unit

    def prepare(self) -> None:
        self.work.prepare()

    @staticmethod
    def _name(item: Item) -> str:
        return url_path(item.path).name if is_url(item.path) else Path(item.path).name

    def _local(self, item: Item, folder: str) -> Item:
        """The item as the work sees it: input in ``folder``/in, output in ``folder``/out unless that is local."""
        out = os.path.join(folder, "out") if is_url(item.out) else item.out
        path = os.path.join(folder, "in", self._name(item)) if is_url(item.path) else item.path
        return Item(path, item.stem, out)

    def _names(self, item: Item) -> list[str]:
        """The item's files relative to its output folder."""
        local = self._local(item, os.path.join(tempfile.gettempdir(), "depthstudio-names"))
        return [os.path.relpath(p, local.out).replace(os.sep, "/") for p in self.work.targets(local)]

    def targets(self, item: Item) -> list[Path]:
        return [] if is_url(item.out) else self.work.targets(self._local(item, tempfile.gettempdir()))

    def written(self, item: Item) -> list[Path]:
        return [] if is_url(item.out) else self.work.written(self._local(item, tempfile.gettempdir()))

    def is_done(self, item: Item) -> bool:
        if not is_url(item.out):
            return self.work.is_done(self._local(item, tempfile.gettempdir()))
        fs, base = filesystem(item.out)
        for name in self._names(item):
            try:
                if int(fs.info(posixpath.join(base, name)).get("size") or 0) <= 0:
                    return False
            except OSError:  # FileNotFoundError included
                return False
        return True

    def __call__(self, item: Item):
        with tempfile.TemporaryDirectory(prefix="depthstudio-remote-") as tmp:
            local = self._local(item, tmp)
            if is_url(item.path):
                fs, path = filesystem(item.path)
                os.makedirs(os.path.dirname(local.path))
                try:
                    fs.get_file(path, local.path)
                except FileNotFoundError:
                    raise InputError(f"{item.path}: not found") from None
                except OSError as exc:
                    raise InputError(f"{item.path}: cannot download ({exc})") from None
            try:
                message = self.work(local)
            except InputError as exc:  # name the URL, not the temporary copy
                raise InputError(str(exc).replace(local.path, item.path)) from None
            if local.path != item.path:
                _name_the_source(self.work, local, item.path)
            if is_url(item.out):
                self._upload(item, local.out)
                if message:
                    message = message.replace(local.out, item.out.rstrip("/"))
            if message and local.path != item.path:
                message = message.replace(local.path, item.path)
        return message

    def _upload(self, item: Item, out: str) -> None:
        fs, base = filesystem(item.out)
        names = sorted(os.path.relpath(os.path.join(root, f), out).replace(os.sep, "/")
                       for root, _, files in os.walk(out) for f in files)
        order = {n: i for i, n in enumerate(self._names(item))}
        names.sort(key=lambda n: order.get(n, -1))  # the files resume checks last: complete means complete
        for name in names:
            remote = posixpath.join(base, name)
            try:
                try:
                    fs.put_file(os.path.join(out, name), remote)
                except FileNotFoundError:  # a file system with real folders (file://, sftp://...)
                    fs.makedirs(posixpath.dirname(remote), exist_ok=True)
                    fs.put_file(os.path.join(out, name), remote)
            except OSError as exc:
                raise OutputError(f"{join(item.out, name)}: cannot upload ({exc})") from None


def _name_the_source(work: BatchWork, local: Item, url: str) -> None:
    """The JSON sidecars (camera.json, a video's meta) name the input: the URL, not its temporary copy."""
    old, new = json.dumps(local.path)[1:-1], json.dumps(url)[1:-1]
    for path in work.written(local):
        if path.suffix == ".json" and path.is_file():
            text = path.read_text(encoding="utf-8")
            if old in text:
                write_text(path, text.replace(old, new))


def output_stems_any(paths: list) -> dict:
    """``batch.output_stems`` for a mix of local paths and URLs (made unique by the parent folder's name)."""
    keys = [url_path(p) if is_url(p) else Path(p) for p in paths]
    counts: dict[str, int] = {}
    for k in keys:
        counts[k.stem] = counts.get(k.stem, 0) + 1
    return {p: (f"{k.parent.name}_{k.stem}" if counts[k.stem] > 1 else k.stem) for p, k in zip(paths, keys)}

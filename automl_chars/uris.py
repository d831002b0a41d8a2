"""Storage URIs (``s3://``, ``gs://``, ``file://``: any filesystem pyarrow opens) for the results
root, portfolios and the results store.

Ray Tune writes a run's own state straight to the URI (``RunConfig(storage_path=URI)``, as Ray
recommends on a multi-node cluster). The platform's own files (settings, ``trials.csv``,
``summary.json``, store and portfolio files) are written to a local *mirror* of the URI's folder
and uploaded file by file (:func:`push`); reading a run, a store or a portfolio downloads them
first (:func:`pull`). The mirror of a URI is ``<cache>/<hash of its bucket part>/<its path>``,
and the bucket part is kept beside it, so a mirror path tells which URI it stands for
(:func:`remote_for`): code that joins paths (``<storage>/<name>``, ``store/`` beside a sweep)
works on mirrors unchanged, and every write through :mod:`automl_chars.layout` lands at the URI.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from automl_chars.errors import (
    DamagedFileError,
    DamagedFileWarning,
    InvalidConfigError,
    first_line,
)

#: Environment variable naming the folder that holds the local mirrors of storage URIs.
CACHE_ENV = "AUTOML_CHARS_STORAGE_CACHE"
#: The file in a mirror's top folder that records the URI's bucket part (scheme, credentials,
#: bucket, query).
_BASE_FILE = ".uri"
#: URIs checked reachable in this process (a check is a round trip to the store).
_checked: set[str] = set()


def cache_root() -> Path:
    """``$AUTOML_CHARS_STORAGE_CACHE``, else ``~/.cache/automl_chars/storage``."""
    raw = os.environ.get(CACHE_ENV)
    return (Path(raw).expanduser() if raw else Path.home() / ".cache" / "automl_chars"
            / "storage").resolve()


def is_uri(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a remote URI (``scheme://...``; ``file://`` is a local path)."""
    text = os.fspath(location)
    return isinstance(text, str) and "://" in text and urlsplit(text).scheme not in ("", "file")


def local_path(location: str | os.PathLike, option: str = "storage_path") -> Path:
    """The local folder standing for ``location``: a path itself, a ``file://`` URI's path, or a
    remote URI's mirror, once :func:`check` found the URI usable (``option`` names the setting
    in its errors)."""
    text = os.fspath(location)
    if isinstance(text, str) and text.startswith("file://"):
        return Path(urlsplit(text).path).expanduser().resolve()
    if not is_uri(text):
        return Path(text).expanduser().resolve()
    check(text, option)
    return mirror(text)


def mirror(uri: str) -> Path:
    """The local mirror folder of the remote ``uri`` (see the module's docstring)."""
    parts = urlsplit(uri)
    base = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    top = cache_root() / _top_name(base)
    try:
        recorded = _recorded_base(top)
    except DamagedFileError as err:  # the URI given says what it must hold: written again
        warnings.warn(f"{err.location} was damaged ({err.problem}); written again from the "
                      f"storage URI given.", DamagedFileWarning, stacklevel=2)
        recorded = None
    if recorded is None:
        top.mkdir(parents=True, exist_ok=True)
        tmp = top / f".{uuid.uuid4().hex}.tmp"
        tmp.write_text(base)
        tmp.chmod(0o600)  # the URI may carry credentials
        os.replace(tmp, top / _BASE_FILE)
    names = [p for p in parts.path.split("/") if p]
    if any(n in (".", "..") for n in names):
        raise InvalidConfigError(f"storage URI {uri!r}: '.' and '..' are not allowed in its path.")
    return top.joinpath(*names)


def remote_for(path: str | os.PathLike) -> str | None:
    """The URI that the mirror ``path`` (or a file or folder in it) stands for; None for a
    path that is no mirror (a local folder). A mirror whose record of its URI is damaged
    raises :class:`~automl_chars.errors.DamagedFileError` naming it: taken for a local folder,
    the mirror's files would no longer be uploaded nor refreshed."""
    return _remote(path, strict=True)


def _remote(path: str | os.PathLike, strict: bool) -> str | None:
    """:func:`remote_for`; a damaged record of the URI is None unless ``strict``."""
    root = cache_root()
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        return None
    recorded = _recorded_base(root / rel.parts[0], strict) if rel.parts else None
    if recorded is None:
        return None
    base = urlsplit(recorded)
    return urlunsplit((base.scheme, base.netloc, "/" + "/".join(rel.parts[1:]), base.query, ""))


#: What to do about a damaged :data:`_BASE_FILE`.
MARKER_REMEDY = ("It is the local mirror's record of its storage URI: give any command that "
                 "storage URI (e.g. automl-chars show s3://bucket/path) and it is written again.")


def _top_name(base: str) -> str:
    """The folder of a URI's mirror in the cache: a hash of its bucket part ``base``."""
    return hashlib.sha256(base.encode()).hexdigest()[:16]


def _recorded_base(top: Path, strict: bool = True) -> str | None:
    """The bucket part of the URI that the mirror folder ``top`` stands for, from its
    :data:`_BASE_FILE`; None without one. One that does not hash to ``top``'s name (empty, cut
    short, garbled) raises :class:`~automl_chars.errors.DamagedFileError` naming it if
    ``strict``, else is None (a message naming a path: the error names the marker itself)."""
    marker = top / _BASE_FILE
    try:
        raw = marker.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    base = raw.decode("utf-8", errors="replace")
    if _top_name(base) == top.name:
        return base
    if not strict:
        return None
    problem = ("it is empty" if not raw.strip() else "garbled: it is not text"
               if "\ufffd" in base else "truncated or garbled: it names another URI than "
               "its folder's")
    raise DamagedFileError(marker, problem, MARKER_REMEDY)


def shown(location: str | os.PathLike, query: bool = True) -> str:
    """``location`` as a message or a stored record names it: the URI of a mirror path (else
    the path), without the credentials a URI may carry (``s3://KEY:SECRET@...``), and without
    its query (endpoint, region) unless ``query``."""
    # a message only: a mirror whose record is damaged is named by its path (the damage is
    # raised where the URI matters, and naming the record itself must not recurse)
    text = _remote(location, strict=False) or os.fspath(location)
    if not is_uri(text):
        return text
    parts = urlsplit(text)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query if query else "", ""))


def tune_path(path: str | os.PathLike) -> str:
    """What Ray Tune gets for the folder ``path``: its URI for a mirror, else the path."""
    return remote_for(path) or os.fspath(path)


def location_of(fs_path: str, folder: Path) -> str:
    """A location (local path or URI) of ``fs_path``, a path that Tune reported in the
    filesystem of ``folder``'s storage (a checkpoint's ``path``: a URI's bucket path)."""
    uri = remote_for(folder)
    if uri is None:
        return fs_path
    _, folder_fs_path = _filesystem(uri)
    rel = PurePosixPath(fs_path).relative_to(folder_fs_path.rstrip("/"))
    return tune_path(folder.joinpath(*rel.parts))


def check(uri: str, option: str = "storage_path") -> None:
    """Raises :class:`InvalidConfigError` naming ``option`` unless pyarrow opens ``uri``'s
    filesystem and its bucket (top folder) is there: before any run starts on it."""
    if uri in _checked:
        return
    try:
        fs, path = _filesystem(uri)
    except (ValueError, OSError) as err:  # pyarrow.ArrowInvalid is a ValueError
        raise InvalidConfigError(
            f"{option} {uri!r}: {first_line(err)}. Use a URI of a filesystem pyarrow opens "
            f"(s3://bucket/path, gs://bucket/path, file:///path) or a local folder."
        ) from None
    import pyarrow.fs

    bucket = path.strip("/").split("/")[0]
    try:
        found = fs.get_file_info(bucket).type != pyarrow.fs.FileType.NotFound if bucket else True
    except OSError as err:
        raise InvalidConfigError(
            f"{option} {uri!r} cannot be reached: {first_line(err)}. Check the address, the "
            f"network and the credentials (e.g. AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL), or use "
            f"a local folder."
        ) from None
    if not found:
        raise InvalidConfigError(f"{option} {uri!r}: there is no bucket {bucket!r}. Create it "
                                 f"first, or name one that exists.")
    _checked.add(uri)


def push(path: str | os.PathLike) -> None:
    """Uploads the file ``path`` of a mirror to its URI (nothing for a local path)."""
    uri = remote_for(path)
    if uri is None:
        return
    fs, dest = _filesystem(uri)
    with open(path, "rb") as src, fs.open_output_stream(dest) as out:
        out.write(src.read())


def move(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Moves the file ``src`` to ``dst`` (here), and its URI's copy to ``dst``'s URI when
    ``src`` is in a mirror: moved aside here only, the file would come back from the URI on
    the next read."""
    os.replace(src, dst)
    uri, target = remote_for(src), remote_for(dst)
    if uri is None or target is None:
        return
    fs, path = _filesystem(uri)
    fs.move(path, _filesystem(target)[1])


def remove(path: str | os.PathLike) -> None:
    """Removes the file or folder ``path`` here and, in a mirror, at its URI (else a later
    read downloads it again)."""
    import shutil

    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    uri = remote_for(path)
    if uri is None:
        return
    import pyarrow.fs

    fs, where = _filesystem(uri)
    kind = fs.get_file_info(where).type
    if kind == pyarrow.fs.FileType.Directory:
        fs.delete_dir(where)
    elif kind == pyarrow.fs.FileType.File:
        fs.delete_file(where)


def pull(folder: str | os.PathLike, recursive: bool = False,
         skip: Iterable[str] = ("checkpoint_",)) -> Path:
    """Downloads the files in the URI of the mirror ``folder`` into it (with subfolders when
    ``recursive``, except those whose names start with one of ``skip``: checkpoints are read
    through Tune), replacing stale copies and removing files the URI no longer has. Returns
    ``folder``; a local folder is left as it is."""
    folder = Path(folder)
    uri = remote_for(folder)
    if uri is None:
        return folder
    import pyarrow.fs

    fs, src = _filesystem(uri)
    src = src.rstrip("/")
    selector = pyarrow.fs.FileSelector(src, allow_not_found=True, recursive=recursive)
    skip = tuple(skip)
    remote = {}
    for info in fs.get_file_info(selector):
        rel = PurePosixPath(info.path).relative_to(src)
        if info.type == pyarrow.fs.FileType.File and not any(
                p.startswith(skip) for p in rel.parts[:-1]):
            remote[rel] = info
    for rel, info in remote.items():
        target = folder.joinpath(*rel.parts)
        if target.exists() and target.stat().st_size == info.size and info.mtime is not None \
                and target.stat().st_mtime >= info.mtime.timestamp():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with fs.open_input_stream(info.path) as stream:
            tmp.write_bytes(stream.read())
        os.replace(tmp, target)
    if folder.is_dir():  # what the URI no longer has (a rerun removed it, a user moved it
        # aside there) is gone here too: the files of the folders pulled, not skipped ones
        local = folder.rglob("*") if recursive else folder.iterdir()
        for stale in local:
            rel = PurePosixPath(*stale.relative_to(folder).parts)
            if stale.is_file() and rel not in remote and not any(
                    p.startswith(".") for p in rel.parts) and not any(
                    p.startswith(skip) for p in rel.parts[:-1]):
                stale.unlink()
    return folder


def _filesystem(uri: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


__all__ = ["CACHE_ENV", "cache_root", "check", "is_uri", "local_path", "location_of", "mirror",
           "move", "pull", "push", "remote_for", "remove", "shown", "tune_path"]

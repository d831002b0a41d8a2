"""Errors the platform raises on bad input: each names what was wrong and how to fix it."""

from __future__ import annotations

import numbers


class AutomlCharsError(Exception):
    """Base class of every error raised on purpose by automl_chars."""


class _StructuredError(AutomlCharsError):
    """An error built from fields: pickles by its constructor arguments, so it crosses Ray."""

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._init_args = (args, kwargs)
        return self

    def __init__(self, message: str):
        super().__init__(message)
        self.args = (message,)  # OSError subclasses otherwise keep args from __new__

    def __reduce__(self):
        args, kwargs = self._init_args
        return (_rebuild, (type(self), args, kwargs))


def _rebuild(cls, args, kwargs):
    return cls(*args, **kwargs)


class UnknownNameError(_StructuredError, ValueError):
    """A name (dataset, preset, model, ...) that is not registered."""

    def __init__(self, kind: str, name: str, known: list[str], suggestions: list[str]):
        self.kind, self.name, self.known, self.suggestions = kind, name, known, suggestions
        hint = f" Did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        listing = ", ".join(known) if len(known) <= 40 else ", ".join(known[:40]) + ", ..."
        super().__init__(f"Unknown {kind} {name!r}.{hint} Known {kind}s: {listing}.")


class DuplicateNameError(AutomlCharsError, ValueError):
    """A second registration under a name that is already taken."""


class DatasetUnavailableError(_StructuredError, FileNotFoundError):
    """A dataset's files are missing locally and were not (or could not be) downloaded."""

    def __init__(self, name: str, folder: str, urls: list[str], reason: str = ""):
        self.dataset, self.folder, self.urls = name, folder, urls
        where = "\n".join(f"  {u}" for u in urls) or "  (no public address)"
        extra = f" ({reason})" if reason else ""
        super().__init__(
            f"Dataset {name!r} is not available in {folder}{extra}.\n"
            f"Fetch its files from:\n{where}\n"
            f"and place them in {folder}, or call load({name!r}, download=True) "
            f"(CLI: --download) on a machine with internet access. The data root is set by "
            f"the `root` argument or the AUTOML_CHARS_DATA environment variable."
        )


class CorruptDatasetError(_StructuredError):
    """A dataset file exists but cannot be read or fails its checksum."""

    def __init__(self, name: str, path: str, reason: str, urls: list[str] = ()):  # type: ignore[assignment]
        self.dataset, self.path = name, path
        src = f" Download it again from {', '.join(urls)}." if urls else ""
        super().__init__(
            f"Dataset {name!r}: file {path} is corrupt ({reason}). Delete it and fetch it again.{src}"
        )


class InvalidConfigError(AutomlCharsError, ValueError):
    """Settings (a preset, a sweep option, a configuration) that cannot be used."""


class ExperimentStateError(AutomlCharsError):
    """An experiment folder that cannot be resumed or read."""


class TrialFailure(AutomlCharsError):
    """A trial failed for a reason that a retry cannot fix (a configuration that cannot be built,
    a loss that diverged). The trial ends at once as a failed result, which BOHB counts as bad;
    lost processes and nodes, by contrast, are retried from the last checkpoint."""


class NonFiniteLossError(TrialFailure):
    """Training produced a NaN or infinite loss (e.g. a learning rate far too high)."""


class SweepInterrupted(ExperimentStateError):
    """A sweep stopped before every trial ended by itself (Ctrl-C, SIGTERM, ``ray job stop``).

    Nothing is written up as finished; ``resume`` continues it. ``exit_code`` is what a command
    line exits with: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
    """

    def __init__(self, path: str, how: str, exit_code: int, resume_hint: str):
        self.path, self.exit_code = path, exit_code
        super().__init__(f"Sweep interrupted ({how}); nothing was written up as finished. "
                         f"Resume it with {resume_hint}")


class ClusterUnavailableError(AutomlCharsError):
    """The Ray cluster to connect to cannot be reached."""


class PortfolioError(AutomlCharsError):
    """A portfolio that cannot be read or used: a missing or corrupt manifest or weight file, a
    weight file that holds more than tensors, an entry that does not fit the target's images."""


class TableError(AutomlCharsError):
    """A learning-curve table that cannot be read or used: a missing, truncated or other-version
    file, a file that is not a table, a space or dataset the table was not built for."""


class DamagedFileError(_StructuredError):
    """A file the platform reads back that is truncated, empty, garbled or of an unknown format
    version (a full disk, a killed copy, a hand edit). Names the file, what is wrong with it and
    what to do; the files beside it are left as they are."""

    def __init__(self, path: str, problem: str, remedy: str):
        from automl_chars import uris  # same layer; uris imports this module

        self.path, self.problem, self.remedy = str(path), problem, remedy
        #: Where the file lives: its URI (no credentials) when ``path`` is in the local mirror
        #: of a storage URI, else ``path``.
        self.location = uris.shown(path, query=False)
        if self.location == self.path:
            super().__init__(f"{path} is damaged ({problem}). {remedy}")
            return
        super().__init__(
            f"{self.location} is damaged ({problem}). {remedy} Whatever you move aside or "
            f"edit, do it to the copy at that URI (with your storage's tools: aws s3 mv, "
            f"gcloud storage mv), not to {path}: that is only its local mirror, refreshed from "
            f"the URI whenever it is read.")


class StoreError(AutomlCharsError):
    """A results store that cannot be read at all (its folder cannot be listed). A damaged file
    inside a readable store is not an error: it is skipped with a :class:`DamagedFileWarning`."""


class DamagedFileWarning(UserWarning):
    """A damaged file was left out and the rest still used (a results store's file, a part of
    the shipped learning-curve table, a result folder ``store import`` skips): the warning names
    it and what to do (move it aside; reinstall the package for package data)."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none: what a one-line
    message quotes of an underlying library's error."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_whole(value: object) -> bool:
    """A whole number (Python's or numpy's), not a bool: what a count or a seed must be."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)

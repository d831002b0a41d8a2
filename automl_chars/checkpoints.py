"""The checkpoint format of every supervised trial (``trial_state.pt``): what a Trainable saves
and what a portfolio, transfer or evaluation reads back, in plain torch (no Ray), versioned.

A checkpoint holds ``format`` (:data:`CHECKPOINT_FORMAT`), the Trainable's name, the budget units
done, the samples seen and the failure (None), then, for a trial that did not fail, the model's
name, architecture, configuration and ``state_dict``, the optimizer's and schedule's state, the
RNG state and the Trainable's extra state.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile

import torch

from automl_chars.errors import DamagedFileError, InvalidConfigError, first_line

CHECKPOINT_FILE = "trial_state.pt"
#: Version of :data:`CHECKPOINT_FILE`'s contents; loading another version is refused.
CHECKPOINT_FORMAT = 3  # 3: CNN parameters under conv/fc/head


def save_trial_state(checkpoint_dir: str | os.PathLike, state: dict) -> None:
    """Writes ``state`` as :data:`CHECKPOINT_FILE` in ``checkpoint_dir``, atomically."""
    fd, tmp = tempfile.mkstemp(dir=checkpoint_dir, prefix=f".{CHECKPOINT_FILE}.")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, os.path.join(checkpoint_dir, CHECKPOINT_FILE))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_trial_state(checkpoint_dir: str | os.PathLike, trial: str = "") -> dict:
    """A :data:`CHECKPOINT_FILE` as saved by :class:`~automl_chars.trainables.base.SupervisedTrainable`, on the CPU.

    ``weights_only=True``: a checkpoint from elsewhere can hold tensors and plain values only,
    never code. RNG states stay CPU tensors; ``load_state_dict`` copies to the model's device.
    An empty, truncated or garbled file raises :class:`~automl_chars.errors.DamagedFileError`
    naming it (and ``trial``, the trial restoring from it), not torch's unpickling error.
    """
    path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
    check_trial_state(path, trial)
    remedy = damaged_checkpoint_remedy(trial)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused what it holds
        raise DamagedFileError(path, f"it holds objects other than tensors and plain values, "
                               f"refused ({first_line(err)})", remedy) from None
    except (RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise DamagedFileError(path, f"garbled: {first_line(err)}", remedy) from None
    if not isinstance(state, dict):
        raise DamagedFileError(path, f"it holds a {type(state).__name__}, not a trial's state",
                               remedy)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise InvalidConfigError(
            f"{path} is a checkpoint of format {state.get('format')!r}; this version of "
            f"automl_chars reads format {CHECKPOINT_FORMAT}. Rerun the sweep that wrote it."
        )
    return state


def check_trial_state(path: str | os.PathLike, trial: str = "") -> None:
    """Raises :class:`~automl_chars.errors.DamagedFileError` naming ``path`` (and ``trial``)
    unless it is whole: ``torch.save`` writes a zip archive, whose index is at its end, so an
    empty, truncated or garbled file is found without unpickling it. A missing file is left to
    the reader."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise DamagedFileError(path, "empty, truncated or garbled: not a checkpoint",
                               damaged_checkpoint_remedy(trial))


def damaged_checkpoint_remedy(trial: str = "") -> str:
    """What to do about a damaged checkpoint: nothing resumes from it; its trial trains again."""
    # "default": Ray's Trainable.trial_name outside Tune
    who = f"Trial {trial} cannot" if trial not in ("", "default") else "No trial can"
    return (f"{who} resume from it: Tune ends the trial restoring it as errored and the rest "
            f"of the run goes on. A resume with restart_errored=True (command line: the same "
            f"command with --resume --restart-errored; table build --resume does it by itself) "
            f"trains that trial again from scratch.")


__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_FORMAT", "check_trial_state", "damaged_checkpoint_remedy",
           "load_trial_state", "save_trial_state"]

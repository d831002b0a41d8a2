"""The checkpoint format of every supervised trial (``trial_state.pt``): what a Trainable saves
and what a portfolio, transfer or evaluation reads back, in plain torch (no Ray), versioned.

A checkpoint holds ``format`` (:data:`CHECKPOINT_FORMAT`), the Trainable's name, the budget units
done, the samples seen and the failure (None), then, for a trial that did not fail, the model's
name, architecture, configuration and ``state_dict``, the optimizer's and schedule's state, the
RNG state and the Trainable's extra state.
"""

from __future__ import annotations

import os
import tempfile

import torch

from automl_chars.errors import InvalidConfigError

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


def load_trial_state(checkpoint_dir: str | os.PathLike) -> dict:
    """A :data:`CHECKPOINT_FILE` as saved by :class:`~automl_chars.trainables.base.SupervisedTrainable`, on the CPU.

    ``weights_only=True``: a checkpoint from elsewhere can hold tensors and plain values only,
    never code. RNG states stay CPU tensors; ``load_state_dict`` copies to the model's device.
    """
    path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise InvalidConfigError(
            f"{path} is a checkpoint of format {state.get('format')!r}; this version of "
            f"automl_chars reads format {CHECKPOINT_FORMAT}. Rerun the sweep that wrote it."
        )
    return state


__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_FORMAT", "load_trial_state", "save_trial_state"]

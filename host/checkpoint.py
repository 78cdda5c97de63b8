"""Checkpoint and resume a training run exactly.

A checkpoint holds everything a trainer needs to continue as if it had never
stopped: every parameter (the hotline trainer writes its hot rows back into the
host tables first), the dense and row optimizer state (row state lives beside
each row in the tables), the hot map (hot keys and slots), the popularity
counter's state when the run is still learning, the keys learned so far, the
data position (the step count) and the metrics so far.  Training 2N steps
equals training N, saving, resuming into a fresh trainer built with the same
configs, and training N more (bit for bit on the same machine).

The file is a ``torch.save`` pickle: load only checkpoints you trust.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["CHECKPOINT_VERSION", "save_checkpoint", "load_checkpoint", "resume"]

CHECKPOINT_VERSION = 1


def save_checkpoint(trainer, path) -> Path:
    """Write ``trainer``'s state to ``path`` (atomically: a partial file never replaces a good one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = trainer.state_dict()
    state["version"] = CHECKPOINT_VERSION
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a checkpoint of this version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: one line, naming it
        raise ValueError(f"checkpoint {str(path)!r} cannot be read: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{str(path)!r} is not a version-{CHECKPOINT_VERSION} hotline checkpoint")
    return state


def resume(trainer, path) -> None:
    """Load the checkpoint at ``path`` into ``trainer`` (built with the same configs)."""
    trainer.load_state_dict(load_checkpoint(path))

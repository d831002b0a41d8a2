"""Ctrl-C and SIGTERM during a sweep: a graceful stop that leaves the sweep resumable.

Ray Tune stops gracefully on its own SIGINT handler (or SIGUSR1), saves its state and returns
from ``fit()`` as if the sweep had ended. :class:`InterruptGuard` turns SIGINT *and* SIGTERM
(``kill``, ``ray job stop``, a cluster shutting down) into that same graceful stop, and records
which signal came, so the runner can report an unfinished sweep instead of writing it up. A second
signal aborts at once (``KeyboardInterrupt``), as Tune's own handler does; the sweep is still
resumable from Tune's last saved state.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

#: Environment Tune reads in ``fit()``: this guard, not Tune, owns SIGINT meanwhile.
TUNE_ENV = {"TUNE_DISABLE_SIGINT_HANDLER": "1"}
GUARDED = (signal.SIGINT, signal.SIGTERM)


def _before_tune(signum: int, frame: FrameType | None) -> None:
    """SIGUSR1's placeholder until Tune's own handler replaces it."""


class InterruptGuard:
    """``with InterruptGuard() as guard: tuner.fit()``; afterwards ``guard.signal`` is the first
    signal received (None if none). Only the main thread can install handlers; elsewhere the
    guard does nothing and Tune's defaults apply."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in GUARDED:
                self._previous[sig] = signal.signal(sig, self._handle)
            # Until Tune installs its SIGUSR1 handler, SIGUSR1 must not kill the process.
            self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, _before_tune)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt  # a second signal: stop now, without the graceful part
        self.signal = signum
        if signal.getsignal(signal.SIGUSR1) is _before_tune:
            raise KeyboardInterrupt  # fit() has not started the sweep yet: nothing to save
        # Tune always handles SIGUSR1 as "stop gracefully" (ray.tune.tune._setup_signal_catching).
        os.kill(os.getpid(), signal.SIGUSR1)

    @property
    def exit_code(self) -> int:
        """What a command line exits with: 128 + the signal's number (130 for Ctrl-C)."""
        return 128 + (self.signal or signal.SIGINT)

    @property
    def description(self) -> str:
        return signal.Signals(self.signal or signal.SIGINT).name

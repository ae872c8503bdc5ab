"""Stop a LAMMPS run cleanly when Slurm announces the end of the job (time limit or preemption).

Slurm sends the job a signal some time before it kills it (``--signal=USR2@seconds``; submitit
asks for it and installs the Python handler that checkpoints and requeues the job).  A Python
handler only runs when the main thread executes Python again, and during a LAMMPS run the main
thread is inside LAMMPS for hours.  So, while :class:`StopOnSignal` is active, the signal is also
written to a pipe (``signal.set_wakeup_fd``, done in C at delivery), a thread reading that pipe
creates the *stop file*, and the input scripts' ``fix halt`` (``is_file(stop_file)``, checked
every ``stop_check`` steps) ends the run.  LAMMPS returns, the pending Python handler runs
(submitit: requeue), and the requeued job continues from the run's last periodic restart.

Without submitit (``hpc-botan simulate`` in a user's own batch script) a handler that does nothing
is installed for the signal instead of its default action (which would kill the process), and
the stopped run raises :class:`RunStopped`: one line (exit code 2 from the CLI), resumable by running again.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from hpc_botan.errors import LammpsError

log = logging.getLogger("hpc_botan.simulate")

#: The signals that ask a simulation to stop: submitit's checkpoint signal (Slurm ``--signal``).
STOP_SIGNALS = (signal.SIGUSR2,)


class RunStopped(LammpsError):
    """A LAMMPS run ended early because its stop file appeared (a signal, or a user's ``touch``)."""


def _ignore(signum, frame) -> None:  # noqa: ARG001  (signal handler signature)
    """Keeps the signal's default action (termination) away; the stop file does the work."""


class StopOnSignal:
    """Context manager: while active, :data:`STOP_SIGNALS` create ``stop_file``.

    A stop file left by an earlier attempt is removed on entry (the job was requeued to go on),
    and the file is removed again on exit.  Outside the main thread (where signals cannot be
    watched) it only manages the file.
    """

    def __init__(self, stop_file: str | Path, signals: tuple[int, ...] = STOP_SIGNALS):
        self.stop_file = Path(stop_file)
        self.signals = signals
        self._pipe: tuple[int, int] | None = None
        self._old_fd = -1
        self._old_handlers: dict[int, object] = {}
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "StopOnSignal":
        self.stop_file.parent.mkdir(parents=True, exist_ok=True)
        self.stop_file.unlink(missing_ok=True)
        if threading.current_thread() is not threading.main_thread():
            return self
        r, w = os.pipe()
        os.set_blocking(w, False)
        try:
            self._old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except ValueError:  # not the main interpreter
            os.close(r)
            os.close(w)
            return self
        self._pipe = (r, w)
        for signum in self.signals:
            current = signal.getsignal(signum)
            if current in (signal.SIG_DFL, signal.SIG_IGN, None):
                self._old_handlers[signum] = current
                signal.signal(signum, _ignore)
        self._thread = threading.Thread(target=self._watch, name="hpc-botan-stop-on-signal", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        assert self._pipe is not None
        r = self._pipe[0]
        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:  # write end closed: the context ended
                return
            if any(b in self.signals for b in data):
                log.warning("signal received: stopping the LAMMPS run in progress (it continues from its last "
                            "restart when the job runs again)")
                try:
                    self.stop_file.touch()
                except OSError as exc:
                    log.error("could not create the stop file %s: %s", self.stop_file, exc)

    def __exit__(self, *exc) -> None:
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_fd)
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)
            os.close(self._pipe[1])
            if self._thread is not None:
                self._thread.join(timeout=5)
            os.close(self._pipe[0])
            self._pipe = None
        self.stop_file.unlink(missing_ok=True)

"""How fast this machine's LAMMPS integrates the Kob–Andersen liquid: a short measured run.

``hpc-botan plan`` turns the measured speed into the cost of a run.  The probe prepares a random
configuration of ``N`` particles with ``prepare.in`` (minimisation, a few hundred steps of melt,
then NVT at the target temperature), with the accelerator ``hpc-botan doctor`` picks here and the
config's potential, and reads the speed of the NVT part from LAMMPS' own ``Loop time`` line.  The
restart file that the script writes at its phase ends gives the size of one run's restart.
"""
from __future__ import annotations

import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hpc_botan.config import Config
from hpc_botan.errors import LammpsError
from hpc_botan.physics import ka
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, probe_capabilities, run_batch
from hpc_botan.simulate.stage import PREPARE_SCRIPT, common_variables, find_inputs_dir, select_accelerator

_LOOP_TIME = re.compile(r"^Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", re.M)


@dataclass(frozen=True)
class SpeedProbe:
    """One measurement: MD steps per second of one LAMMPS run of ``n_particles`` on ``host``."""

    n_particles: int
    steps_per_second: float
    accelerator: str
    restart_bytes: int
    host: str
    lammps_version: int

    def describe(self) -> str:
        return (f"{self.steps_per_second:,.0f} steps/s for N = {self.n_particles} with the {self.accelerator} "
                f"accelerator on {self.host} (LAMMPS {self.lammps_version})")


def loop_speeds(log_text: str) -> list[tuple[int, float]]:
    """(steps, steps per second) of every ``run`` in a LAMMPS log, in order (pure)."""
    return [(int(steps), int(steps) / float(secs)) for secs, _, steps in _LOOP_TIME.findall(log_text)
            if int(steps) > 0 and float(secs) > 0]


def probe_speed(cfg: Config, temperature: float, n_steps: int = 2000) -> SpeedProbe:
    """Measure steps per second at ``cfg.simulation.n_particles`` and ``temperature`` (about 10 s at N = 4096).

    Raises :class:`LammpsError` if LAMMPS is missing or the run fails.
    """
    s = cfg.simulation
    accel = select_accelerator(cfg)
    inputs = find_inputs_dir(cfg)
    n_a, _ = ka.species_counts(s.n_particles)
    with tempfile.TemporaryDirectory(prefix="hpc-botan-probe-") as tmp:
        work = Path(tmp)
        out = work / "probe.data"
        variables = {
            **common_variables(cfg, accel, inputs, work),
            "N": [str(s.n_particles)], "n_a": [str(n_a)], "rho": [repr(s.density)], "T": [repr(temperature)],
            "T_melt": [repr(s.melt_temperature)], "tdamp": [repr(s.thermostat_damping)],
            "n_melt": ["200"], "n_quench": ["0"], "n_equil": [str(n_steps)], "seed": ["12345"],
            "out": [str(out)], "restart_every": ["0"], "restart_file": [str(work / "probe.restart")],
            "stop_file": [str(work / "STOP")], "resume": ["0"], "resume_from": [str(work / "probe.restart")],
            "thermo_every": [str(n_steps)],
        }
        log = work / "probe.log"
        run_batch(Batch([LammpsJob(str(inputs / PREPARE_SCRIPT), variables, str(log))], list(accel.cmdargs), 1),
                  mpi_ranks=1, mpirun=cfg.lammps.mpirun, env=accel.env)
        speeds = [v for steps, v in loop_speeds(log.read_text()) if steps == n_steps]
        restart = work / "probe.restart"
        if not speeds or not restart.is_file():
            raise LammpsError(f"the speed probe's LAMMPS log has no run of {n_steps} steps (log: {log})")
        return SpeedProbe(n_particles=s.n_particles, steps_per_second=speeds[-1], accelerator=accel.name,
                          restart_bytes=restart.stat().st_size, host=socket.gethostname(),
                          lammps_version=probe_capabilities().version)

"""``hpc-botan calibrate CONFIG --out RUN_DIR``: the pilot run that measures τα, and the resolved config."""
from __future__ import annotations

import argparse
from pathlib import Path

from hpc_botan.command_args import add_config_args, add_out_arg

DESCRIPTION = """\
Measure tau_alpha where simulation.time_points is 'calibrated' (for every temperature, or as one
temperature's entry), and write the resolved configuration to RUN_DIR/config.yaml.

A pilot run in RUN_DIR/pilot (a run directory of its own, with a seed derived from
simulation.seed) simulates simulation.calibration.n_configurations configurations of each
calibrated temperature, calibration.n_runs isoconfigurational runs each, recorded at log-spaced
times up to calibration.max_time_tau_alpha x the estimated simulation.tau_alpha.  tau_alpha is
where the configuration-averaged F_s(k = 2 pi) of A particles falls to 1/e; it is recorded in
RUN_DIR/pilot/calibration.json.  The run's time points are then the first
calibration.n_time_points published fractions t_k / tau_alpha (0.0019 ... 31.5 at T = 0.64; the
seventh is 1) times the measured tau_alpha, and simulation.tau_alpha becomes the measured value.

'hpc-botan run' does this itself before simulating; 'hpc-botan simulate' and every later stage
need the resolved RUN_DIR/config.yaml.  Re-running resumes: a finished pilot is not simulated
again, and the same CONFIG with 'calibrated' is accepted by the calibrated run directory."""

EPILOG = """\
examples:
  hpc-botan calibrate quick --out runs/cal --set simulation.time_points=calibrated
  hpc-botan calibrate paper --out /scratch/ka --executor slurm \\
      --set 'simulation.time_points={0.44: calibrated, 0.50: calibrated, 0.64: calibrated}'
  hpc-botan run paper --out /scratch/ka --executor slurm --set simulation.time_points=calibrated"""


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="measure tau_alpha in a pilot run and set the time points from it",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, "simulation.time_points=calibrated")
    add_out_arg(p)
    p.add_argument("--executor", choices=("local", "slurm", "debug"), default="local",
                   help="where the pilot's configurations run: local subprocesses (default), a Slurm job array "
                        "(waited for), or one by one in this process (debug)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # the work imports the simulation stack: only when the command runs
    from hpc_botan.calibrate.stage import CALIBRATION_FILE, calibrate
    from hpc_botan.config import load_config
    from hpc_botan.errors import UserError
    from hpc_botan.io.rundir import CONFIG_NAME, PILOT_DIR

    cfg = load_config(args.config, args.overrides)
    temps = cfg.simulation.calibrated_temperatures()
    if not temps:
        raise UserError("simulation.time_points: no temperature is 'calibrated', nothing to measure; set "
                        "simulation.time_points=calibrated (or one temperature's entry), or use 'hpc-botan simulate'")
    run_dir, resolved = calibrate(args.out, cfg, executor=args.executor)
    s = resolved.simulation
    for t in temps:
        times = ", ".join(f"{x:.4g}" for x in s.time_points[t])
        print(f"calibrate: T = {t:g}: tau_alpha = {s.tau_alpha[t]:.4g} (estimate {cfg.simulation.tau_alpha[t]:g}); "
              f"time points {times}")
    print(f"calibrate: measurement in {Path(run_dir) / PILOT_DIR / CALIBRATION_FILE}, "
          f"resolved configuration in {Path(run_dir) / CONFIG_NAME}")
    return 0

"""``hpc-botan export RUN_DIR --out FILE``: the trained networks as one file that needs only torch.

Only argparse is imported at module level, so that ``hpc-botan --help`` stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Write every finished replica of every trained time point of RUN_DIR (the networks that
'hpc-botan predict' uses: each replica's validation-selected best.pt) into one zip file: each
network's architecture and weights (plain float32 arrays, nothing that can execute), what
prediction needs (time points, temperatures, graph cutoff, training density and composition),
and, for users of plain torch, one torch.export program per model family and temperature with
dynamic numbers of particles and pairs (traced on the CPU in float32).

The file is read by 'hpc-botan predict FILE STRUCTURES --out …' and by
hpc_botan.load_predictor(FILE), in place of the run directory; it needs torch, not the run
directory, its checkpoints or the training code.  hpc_botan never loads the programs (loading a
torch.export program can unpickle): it checks every field and rebuilds the networks from the
arrays, so a file from someone else cannot run code.  See docs/prediction.md."""

EPILOG = """\
examples:
  hpc-botan export runs/quick --out quick.pt2
  hpc-botan predict quick.pt2 new.data --out predictions.h5"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``export`` with the top-level subparsers."""
    p = subparsers.add_parser(
        "export", help="write the trained networks as one file (weights, metadata, torch.export programs)",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with trained replicas under train/")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="file to write (atomically); never inside a run directory's stage folders")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.add_argument("--model", dest="models", action="append", choices=("botan", "ntgnn"),
                   help="export this model family only (repeatable; default: every family with finished replicas)")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    # light modules (no torch), imported when the command runs: --help stays fast
    from hpc_botan.errors import UserError
    from hpc_botan.io.output_paths import RUN_CONFIG, check_output_paths, remove_stale_outputs

    # the paths before the work's imports (torch and the training code: half a minute on a busy node)
    if not (Path(args.run_dir) / RUN_CONFIG).is_file():
        raise UserError(f"{args.run_dir}: not a run directory (no {RUN_CONFIG})")
    check_output_paths([args.out], [args.run_dir], args.overwrite, writes_models=True)
    remove_stale_outputs([args.out])

    # the work imports torch and the training code: only once the paths are known to be good
    from hpc_botan.predict.export import export_run
    from hpc_botan.predict.predict import MODEL_FAMILIES

    path = export_run(args.run_dir, args.out, tuple(args.models or MODEL_FAMILIES), explicit=bool(args.models))
    print(f"export: {path}")
    return 0

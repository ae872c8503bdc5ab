"""``hpc-botan export RUN_DIR --out FILE``: the trained networks as one file that needs only torch.

Only argparse is imported at module level, so that ``hpc-botan --help`` stays fast.
"""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Write every finished replica of every trained time point of RUN_DIR (the networks that
'hpc-botan predict' uses: each replica's validation-selected best.pt) as torch.export programs,
one per model family and temperature, with dynamic numbers of particles and pairs, together with
what prediction needs: time points, temperatures, output standardisation, graph cutoff and the
training density and composition.

The file is read by 'hpc-botan predict FILE STRUCTURES --out …' and by
hpc_botan.load_predictor(FILE), in place of the run directory; it needs torch, not the run
directory, its checkpoints or the training code.  Programs are traced on the CPU in float32."""

EPILOG = """\
examples:
  hpc-botan export runs/quick --out quick.pt2
  hpc-botan predict quick.pt2 new.data --out predictions.h5"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``export`` with the top-level subparsers."""
    p = subparsers.add_parser(
        "export", help="write the trained networks as one torch.export file (no training code needed to use it)",
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
    # the work imports torch and the training code: only when the command runs
    from hpc_botan.predict.export import export_run
    from hpc_botan.predict.predict import MODEL_FAMILIES, check_output_paths

    check_output_paths([args.out], [], args.overwrite)
    path = export_run(args.run_dir, args.out, tuple(args.models or MODEL_FAMILIES), explicit=bool(args.models))
    print(f"export: {path}")
    return 0

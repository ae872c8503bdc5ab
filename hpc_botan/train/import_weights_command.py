"""``hpc-botan import-weights RUN_DIR WEIGHTS.pth…``: the reference implementation's weights as pretrained replicas."""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from hpc_botan.command_args import add_command
from hpc_botan.errors import UserError

DESCRIPTION = (
    "Read state_dicts saved by the reference implementation (pyg_botan: node_encoder.*, "
    "edge_encoder.*, network.edge_model.*, network.node_model.*, decoder.*) safely (tensors "
    "only) and install them as the finished replicas of RUN_DIR's BOTAN pretraining task, one "
    "file per replica in the order given, so that fine-tuning starts from them. The run's "
    "model section must be the reference architecture; with model.separate_decoders=true the "
    "reference's one decoder becomes two identical ones (nodes, edges) that fine-tuning "
    "trains apart.")


def add_parser(sub) -> None:
    p = add_command(sub, "import-weights", "use the reference implementation's weight files as pretrained replicas", DESCRIPTION,
                    "example: hpc-botan import-weights runs/sample shared/data/pyg_botan_sample/initial_model/model1.pth "
               "shared/data/pyg_botan_sample/initial_model/model2.pth")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("weights", nargs="+", metavar="WEIGHTS.pth")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a model.* or train.* value first, as 'train --set' does, e.g. "
                        "train.pretrain.time_index=0 for a data set with a single time point; repeatable")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.io.rundir import load_run_config

    # the files before the imports of torch and the training code (minutes on a loaded node)
    load_run_config(args.run_dir)
    for path in map(Path, args.weights):
        if not path.is_file():
            raise UserError(f"{path}: no such weight file")
        if not zipfile.is_zipfile(path):
            raise UserError(f"{path}: not a plain PyTorch state_dict (not a zip archive written by torch.save)")

    # torch and the training code: only once the files are known to be there
    from hpc_botan.io.rundir import RunLayout, run_config_with_overrides
    from hpc_botan.plan.tasks import check_training_config
    from hpc_botan.train.imported import import_reference_replicas

    run_config_with_overrides(args.run_dir, args.overrides, ("model", "train"), RunLayout.TRAINED_EPOCHS,
                              check=lambda c: check_training_config(args.run_dir, c))

    for path in import_reference_replicas(args.run_dir, args.weights):
        print(f"import-weights: {path}")
    return 0

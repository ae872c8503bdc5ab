"""``hpc-botan import-weights``: reference weight files become pretrained replicas that fine-tuning starts from."""
import shutil

import pytest
import torch

from hpc_botan.cli import main
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.model.botan import OUTPUT_BUFFERS
from hpc_botan.model.reference_weights import load_published_weights, load_reference_weights, with_separate_decoders
from tests.train.conftest import import_synthetic

PRETRAIN = "botan/pretrain/T0.440/t00"
FINETUNE = "botan/finetune/T0.440/t00"


def test_import_weights_then_fine_tune(synthetic_run, sample_dir, tmp_path, capsys):
    weights = [sample_dir / "initial_model" / f"model{k}.pth" for k in (1, 2)]
    args = ["-q", "import-weights", str(synthetic_run), *map(str, weights), "--set", "train.pretrain.time_index=0"]
    assert main(args) == 0
    installed = [synthetic_run / "train" / PRETRAIN / f"replica-{r:02d}" / "final.pt" for r in (0, 1)]
    assert all(p.is_file() for p in installed)
    reference = [load_reference_weights(w).state_dict() for w in weights]
    assert all(torch.equal(load_checkpoint(p)["model"][k], ref[k]) for p, ref in zip(installed, reference) for k in ref)

    # never overwritten; a file that is not a plain state_dict is refused before anything is written
    capsys.readouterr()
    assert main(args) == 2 and "exists; not overwritten" in capsys.readouterr().err
    bad = tmp_path / "notes.pth"
    bad.write_text("not a weight file")
    other = tmp_path / "other_run"
    assert main(["-q", "import-weights", str(synthetic_run), str(bad)]) == 2
    assert "notes.pth: not a plain PyTorch state_dict" in capsys.readouterr().err

    # fine-tuning starts from the imported replica with the same number
    sets = ["train.epochs=1", "train.n_replicas=2", "train.ntgnn.enabled=false", "train.time_indices=[0]",
            "train.validation_fraction=0.25"]
    assert main(["-q", "train", str(synthetic_run), "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    tuned = load_checkpoint(synthetic_run / "train" / FINETUNE / "replica-01" / "final.pt")["model"]
    weights_only = [k for k in tuned if k not in OUTPUT_BUFFERS]  # the task sets its own standardisation
    near = max(float((tuned[k] - reference[1][k]).abs().max()) for k in weights_only)
    far = max(float((tuned[k] - reference[0][k]).abs().max()) for k in weights_only)
    assert near < 1e-2 < far, (near, far)
    assert not other.exists()


def test_published_source_installs_the_shipped_networks_then_fine_tunes(synthetic_run):
    """train.pretrain.source: published: replica k of the pretraining task is the shipped model{k+1}
    (nothing pretrained), recorded as imported, and fine-tuning starts from it."""
    sets = ["train.pretrain.source=published", "train.pretrain.time_index=0", "model.separate_decoders=true",
            "train.epochs=1", "train.n_replicas=2", "train.ntgnn.enabled=false", "train.time_indices=[0]",
            "train.validation_fraction=0.25", "train.head_init=least_squares"]
    assert main(["-q", "train", str(synthetic_run), "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    for replica in (0, 1):
        state = load_checkpoint(synthetic_run / "train" / PRETRAIN / f"replica-{replica:02d}" / "final.pt")
        assert state["extra"]["imported_from"] == f"hpc_botan model{replica + 1}.npz"
        assert state["position"]["epoch"] == 0
        published = with_separate_decoders(load_published_weights(replica + 1)).state_dict()
        assert all(torch.equal(state["model"][k], published[k]) for k in published)
        assert not (synthetic_run / "train" / PRETRAIN / f"replica-{replica:02d}" / "metrics.csv").exists()
    assert (synthetic_run / "train" / FINETUNE / "replica-01" / "final.pt").is_file()


@pytest.mark.parametrize("mode", [["train.time_indices=[0]"], ["train.mode=multi_time", "train.time_indices=null"]],
                         ids=["per_time", "multi_time"])
def test_heads_and_separate_decoders_set_after_the_import_start_as_if_set_before(synthetic_run, sample_dir, capsys,
                                                                                  mode):
    """README's order: import-weights with the reference architecture, then train with
    model.descriptors=heads and model.separate_decoders=true. The imported network is extended (heads at
    zero, decoder copied) and the run trains bit for bit as one whose import had those settings."""
    weights = str(sample_dir / "initial_model" / "model1.pth")
    added = ["model.descriptors=heads", "model.separate_decoders=true"]
    sets = ["train.epochs=1", "train.n_replicas=1", "train.ntgnn.enabled=false", *mode,
            "train.validation_fraction=0.25", "train.head_init=least_squares"]
    multi = "train.mode=multi_time" in mode
    # a multi-time network needs several time points: 3 here, where the shared fixture has 1
    before = import_synthetic(synthetic_run.parent / "multi", n_times=3) if multi else synthetic_run
    after, narrow = before.parent / "after", before.parent / "narrow"
    shutil.copytree(before, after)
    shutil.copytree(before, narrow)

    def flags(items):
        return [a for s in items for a in ("--set", s)]
    assert main(["-q", "import-weights", str(before), weights, *flags(["train.pretrain.time_index=0", *added])]) == 0
    for run in (after, narrow):
        assert main(["-q", "import-weights", str(run), weights, "--set", "train.pretrain.time_index=0"]) == 0
    assert main(["-q", "train", str(before), "--no-progress", *flags(sets)]) == 0
    assert main(["-q", "train", str(after), "--no-progress", *flags([*sets, *added])]) == 0
    for name in ("best.pt", "final.pt"):
        task = "botan/finetune/T0.440/multi" if multi else FINETUNE
        a, b = (load_checkpoint(run / "train" / task / "replica-00" / name) for run in (before, after))
        assert a["architecture"] == b["architecture"] and a["architecture"]["descriptor_shells"]
        assert a["architecture"]["n_outputs"] == (3 if multi else 1)
        assert a["model"].keys() == b["model"].keys()
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name

    # what the import cannot become is refused in one line naming the difference
    capsys.readouterr()
    assert main(["-q", "train", str(narrow), "--no-progress", *flags([*sets, "model.width=32"])]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "another architecture (width: 64 in the file, 32 here)" in err, err

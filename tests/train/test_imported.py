"""``hpc-botan import-weights``: reference weight files become pretrained replicas that fine-tuning starts from."""
import torch

from hpc_botan.cli import main
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.model.botan import OUTPUT_BUFFERS
from hpc_botan.model.reference_weights import load_reference_weights

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

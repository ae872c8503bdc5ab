import pytest
import yaml

from hpc_botan.config import available_presets, config_from_dict, load_config
from hpc_botan.errors import ConfigError


def test_presets_ship_and_load():
    assert {"quick", "paper"} <= set(available_presets())
    quick = load_config("quick")
    assert quick.simulation.n_particles <= 1000
    assert min(quick.simulation.temperatures) >= 0.64
    assert quick.simulation.n_runs == 8
    assert max(quick.simulation.time_points[0.64]) <= 1.2 * quick.simulation.tau_alpha[0.64]


def test_paper_preset_matches_the_published_protocol():
    s = load_config("paper").simulation
    assert (s.n_particles, s.density, s.n_runs) == (4096, 1.2, 32)
    assert s.temperatures == [0.44, 0.50, 0.64]
    assert (s.n_configurations, s.n_train) == (500, 400)
    assert (s.melt_temperature, s.melt_time, s.quench_time, s.timestep) == (5.0, 10000.0, 20.0, 0.001)
    assert s.equilibration_tau_alpha == 40
    # the published fractions of tau_alpha measured by a pilot (docs/validation.md, "tau_alpha(T)"); the
    # published tau_alpha are the estimates that size the pilot and the equilibration
    assert s.time_points == "calibrated" and s.calibrated_temperatures() == [0.44, 0.50, 0.64]
    assert s.calibration.n_time_points == 10
    assert s.tau_alpha == {0.44: 4120, 0.50: 217, 0.64: 16.5}
    published = load_config("paper", ["simulation.time_points={0.44: [0.13, 1.3, 13, 130, 412, 1300, 4120, 13000, "
                                      "41200, 130000]}", "simulation.temperatures=[0.44]"]).simulation
    assert published.time_points[0.44][6] == 4120 == published.tau_alpha[0.44]


@pytest.mark.parametrize(
    "override, message",
    [
        ("simulation.temperatures=[-1]", "simulation.temperatures[0]: must be > 0, got -1"),
        ("simulation.nparticles=10", "simulation.nparticles: unknown key"),
        ("bogus.x=1", "bogus: unknown key"),
        ("simulation.n_runs=2.5", "simulation.n_runs: expected an integer"),
        ("simulation.n_runs=0", "simulation.n_runs: must be >= 1"),
        ("lammps.accelerator=cuda", "lammps.accelerator: expected one of"),
        ("simulation.n_train=99", "simulation.n_train: must be between 0 and n_configurations"),
        ("simulation.time_points={0.64: [1.0, 0.5]}", "simulation.time_points[0.64]: times must increase"),
        ("simulation.temperatures=[0.5]", "simulation.time_points: needs an entry for temperature 0.5"),
        ("launch.slurm.time_min=0", "launch.slurm.time_min: must be >= 1"),
        ("predict.memory_gb=0", "predict.memory_gb: must be > 0 (or null)"),
    ],
)
def test_bad_values_name_the_key_and_reason(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("quick", [override])
    assert message in str(err.value)
    assert str(err.value).startswith("preset quick: ")
    assert "\n" not in str(err.value)


def test_yaml_file_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("simulation:\n  n_runs: [1\n")
    with pytest.raises(ConfigError, match=f"{path} line"):
        load_config(str(path))
    path.write_text("simulation:\n  colour: red\n")
    with pytest.raises(ConfigError, match=f"{path}: simulation.colour: unknown key"):
        load_config(str(path))


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="no such preset.*paper, quick"):
        load_config("quik")


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config("paper", ["simulation.n_runs=4"])
    path = tmp_path / "paper.yaml"
    path.write_text(cfg.to_yaml())
    again = load_config(str(path))
    assert again == cfg
    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_overrides_need_key_and_value():
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        load_config("quick", ["simulation.n_runs"])


def test_exponent_notation_without_a_dot_is_a_number():
    # PyYAML (YAML 1.1) reads 3e-3 as a string; users write it anyway
    cfg = load_config("quick", ["train.learning_rate=3e-3", "simulation.timestep=1E-3"])
    assert cfg.train.learning_rate == 3e-3 and cfg.simulation.timestep == 1e-3
    with pytest.raises(ConfigError, match="train.learning_rate: expected a number, got 'fast'"):
        load_config("quick", ["train.learning_rate=fast"])


def test_settings_added_later_keep_older_run_identities():
    """A config written before a LATER_IDENTITY_KEYS setting existed has the same identity (and so the same
    checkpoint hash) as today's config with that setting at its registered value."""
    import yaml

    from hpc_botan.config import LATER_IDENTITY_KEYS, config_from_dict
    from hpc_botan.io.checkpoint import config_hash

    today = load_config("quick", [f"{dotted}={yaml.safe_dump(value, default_flow_style=True).strip()}"
                                  for dotted, value in LATER_IDENTITY_KEYS.items()])
    old = today.to_dict()
    for dotted in LATER_IDENTITY_KEYS:
        *sections, key = dotted.split(".")
        parent = old
        for section in sections:
            parent = parent[section]
        del parent[key]
    before = config_from_dict(yaml.safe_load(yaml.safe_dump(old)), "old config.yaml")
    assert config_hash(before.identity()) == config_hash(today.identity())
    # a non-default value is part of the identity
    other = load_config("quick", ["simulation.potential=truncated_shifted"])
    assert config_hash(other.identity()) != config_hash(today.identity())

def test_time_points_calibrated_for_every_temperature_or_one():
    every = load_config("paper", ["simulation.time_points=calibrated"])
    assert every.simulation.time_points == "calibrated"
    assert every.simulation.calibrated_temperatures() == [0.44, 0.50, 0.64]
    mixed = load_config("paper", ["simulation.time_points={0.44: calibrated, 0.50: [1.0, 2.0], 0.64: [0.5]}"])
    assert mixed.simulation.time_points == {0.44: "calibrated", 0.50: [1.0, 2.0], 0.64: [0.5]}
    assert mixed.simulation.calibrated_temperatures() == [0.44]
    assert load_config("quick").simulation.calibrated_temperatures() == []
    c = load_config("quick", ["simulation.calibration={n_configurations: 3, n_time_points: 7}"]).simulation.calibration
    assert (c.n_configurations, c.n_runs, c.n_time_points, c.max_time_tau_alpha) == (3, 4, 7, 3.0)
    # the string survives the round trip through a file
    assert config_from_dict(yaml.safe_load(every.to_yaml())) == every


@pytest.mark.parametrize(
    "override, message",
    [
        ("simulation.time_points=calibratd", "simulation.time_points: expected 'calibrated' or a mapping, "
                                             "got 'calibratd'"),
        ("simulation.time_points=3", "simulation.time_points: expected 'calibrated' or a mapping, got 3"),
        ("simulation.time_points={0.64: auto}", "simulation.time_points[0.64]: expected a list or 'calibrated', "
                                                "got 'auto'"),
        ("simulation.time_points={0.64: [0.1, x]}", "simulation.time_points[0.64][1]: expected a number, got 'x'"),
        ("simulation.calibration.n_time_points=11", "simulation.calibration.n_time_points: must be in 1 .. 10"),
        ("simulation.calibration.n_runs=0", "simulation.calibration.n_runs: must be >= 1"),
        ("simulation.calibration.max_time_tau_alpha=-1", "simulation.calibration.max_time_tau_alpha: must be > 0"),
        ("simulation.calibration.runs=2", "simulation.calibration.runs: unknown key"),
    ],
)
def test_bad_calibrated_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("quick", ["simulation.time_points=calibrated", override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_calibrated_pilot_must_span_some_steps():
    with pytest.raises(ConfigError, match="calibration.max_time_tau_alpha: the pilot at T = 0.64 would last 1.65 "
                                          "timesteps"):
        load_config("quick", ["simulation.time_points=calibrated", "simulation.calibration.max_time_tau_alpha=1e-4"])
    # explicit time points need no pilot: the setting is not checked then
    load_config("quick", ["simulation.calibration.max_time_tau_alpha=1e-4"])


def test_unresolved_time_points_are_refused_where_lists_are_needed():
    from hpc_botan.config import require_resolved_time_points

    require_resolved_time_points(load_config("quick"))
    with pytest.raises(ConfigError, match=r"'calibrated' at T = 0.64 .*simulate needs the resolved lists: run "
                                          r"'hpc-botan calibrate CONFIG --out RUN_DIR'"):
        require_resolved_time_points(load_config("quick", ["simulation.time_points=calibrated"]), "simulate")


def test_registered_later_values_are_the_defaults():
    from hpc_botan.config import LATER_IDENTITY_KEYS, Config

    d = Config().to_dict()
    for dotted, value in LATER_IDENTITY_KEYS.items():
        *sections, key = dotted.split(".")
        parent = d
        for section in sections:
            parent = parent[section]
        assert parent[key] == value, dotted


@pytest.mark.parametrize("override, message", [
    ("model.width=32", "model.width: must be 64 (the published networks' architecture) with train.pretrain.source"),
    ("model.n_steps=4", "model.n_steps: must be 7"),
    ("train.n_replicas=9", "train.n_replicas: must be <= 8 with train.pretrain.source: published"),
])
def test_published_start_needs_the_published_architecture(override, message):
    """The shipped networks fit one architecture and there are eight of them: anything else is refused at load."""
    base = ["train.pretrain.source=published", "model.width=64", "model.n_steps=7", "train.n_replicas=4"]
    load_config("quick", base)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("quick", [*base, override])


def test_how_predict_runs_is_not_part_of_the_runs_identity():
    """predict.memory_gb and train.checkpoint_activations change no result: the same identity with or without."""
    base = load_config("quick").identity()
    assert load_config("quick", ["predict.memory_gb=3", "train.checkpoint_activations=true"]).identity() == base

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
    for temp, tau in {0.44: 4120, 0.50: 217, 0.64: 16.5}.items():
        assert len(s.time_points[temp]) == 10
        assert s.time_points[temp][6] == tau == s.tau_alpha[temp]


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
    from hpc_botan.train.checkpoint import config_hash

    today = load_config("quick")
    old = today.to_dict()
    for dotted in LATER_IDENTITY_KEYS:
        section, key = dotted.split(".", 1)
        del old[section][key]
    before = config_from_dict(yaml.safe_load(yaml.safe_dump(old)), "old config.yaml")
    assert config_hash(before.identity()) == config_hash(today.identity())
    for dotted, value in LATER_IDENTITY_KEYS.items():
        section, key = dotted.split(".", 1)
        assert getattr(getattr(today, section), key) == value  # the registered value is the default
    # a non-default value is part of the identity
    other = load_config("quick", ["simulation.potential=truncated_shifted"])
    assert config_hash(other.identity()) != config_hash(today.identity())

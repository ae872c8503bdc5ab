"""The data preparation behind the figures, against hand-computed cases."""
import numpy as np
import pytest

from hpc_botan.errors import UserError
from hpc_botan.plots.accuracy import ceiling_curve, rho_against_weight, rho_series
from hpc_botan.plots.common import check_time_index, default_time_index, pyplot, save_figure
from hpc_botan.plots.displacement import arrow_scale
from hpc_botan.plots.learning import default_tasks, read_learning_curve
from hpc_botan.plots.pairs import default_pdf_time_indices, joint_pdf
from hpc_botan.plots.snapshot import aa_pairs, choose_configuration, slab_mask, slab_pairs


def test_slab_mask_uses_the_minimum_image_along_z():
    box = np.array([10.0, 10.0, 10.0])
    z = np.array([5.0, 5.39, 5.41, 4.61, 9.9, 0.1, 0.5])
    pos = np.column_stack([np.zeros_like(z), np.zeros_like(z), z])
    assert slab_mask(pos, box, 5.0, 0.8).tolist() == [True, True, False, True, False, False, False]
    # a slab centred at z0 = 0 wraps around: 9.9 and 0.1 are 0.1 away from it
    assert slab_mask(pos, box, 0.0, 0.8).tolist() == [False] * 4 + [True, True, False]


def test_aa_pairs_keep_each_close_a_a_pair_once():
    species = np.array([0, 0, 1, 0])
    # edges 0→1, 1→0 (A–A, 1.0), 0→2 (A–B), 1→3 (A–A, 1.5: second shell), 3→0 (A–A, 1.2, source > dest)
    edge_index = np.array([[0, 1, 0, 1, 3], [1, 0, 2, 3, 0]])
    edge_attr = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.5], [0, 1.2, 0]])
    keep, r = aa_pairs(species, edge_index, edge_attr, 1.35)
    assert keep.tolist() == [True, False, False, False, False]
    assert r.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.5, 1.2])
    in_slab = np.array([True, False, True, True])
    assert not slab_pairs(species, edge_index, edge_attr, in_slab).any()   # particle 1 is outside


def test_joint_pdf_is_normalised_over_all_pairs():
    r = np.array([0.5, 0.5, 1.5, 5.0])      # the last pair lies outside the r window
    e = np.zeros(4)
    pdf = joint_pdf(r, e, np.array([0.0, 1.0, 2.0]), np.array([-1.0, 1.0]))
    # counts [[2], [1]], bin area 1 × 2, 4 pairs
    assert pdf.tolist() == [[0.25], [0.125]]
    assert (pdf * 2.0).sum() == pytest.approx(0.75)   # the fraction of pairs inside the window


@pytest.mark.parametrize("tau, expected", [(10.0, 1), (50.0, 1), (100.0, 2), (0.5, 2), (None, 2),
                                           (float("nan"), 2), (10.0 * (1 - 1e-9), 1)])
def test_default_time_index_is_the_last_time_not_after_tau_alpha(tau, expected):
    assert default_time_index([1.0, 10.0, 100.0], tau) == expected


def test_check_time_index():
    assert check_time_index(-1, 5, "x") == 4
    assert check_time_index(0, 5, "x") == 0
    with pytest.raises(UserError, match=r"--time-index 5: x has 5 time point\(s\) \(0 … 4\)"):
        check_time_index(5, 5, "x")
    with pytest.raises(UserError):
        check_time_index(-6, 5, "x")


def test_default_pdf_time_indices_spread_over_the_time_points():
    assert default_pdf_time_indices(10) == [0, 2, 4, 5, 7, 9]
    assert default_pdf_time_indices(3) == [0, 1, 2]
    assert default_pdf_time_indices(1) == [0]


def test_read_learning_curve(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,global_step,train_loss,val_loss,val_rho_S,val_rho_E,seconds\n"
                    "0,3,0.5,0.6,0.1,,1.0\n1,6,0.25,0.3,0.2,nan,1.0\n")
    c = read_learning_curve(path)
    assert c["epoch"].tolist() == [0, 1]
    assert c["train_loss"].tolist() == [0.5, 0.25]
    assert c["val_rho_S"].tolist() == [0.1, 0.2]
    assert np.isnan(c["val_rho_E"]).all()
    path.write_text("epoch,train_loss\n0,1\n")
    with pytest.raises(UserError, match="no column"):
        read_learning_curve(path)


def test_default_tasks_one_per_family_at_the_lowest_temperature_near_tau_alpha():
    tasks = ["botan/pretrain/T0.440/t02", "botan/finetune/T0.440/t03", "botan/finetune/T0.440/t06",
             "botan/finetune/T0.440/t08", "botan/finetune/T0.500/t06", "ntgnn/T0.440/t03", "ntgnn/T0.440/t08",
             "something/else"]
    times = {0.44: np.array([0.13, 1.3, 13, 130, 412, 1300, 4120, 13000, 41200, 130000.0])}
    assert default_tasks(tasks, times, {0.44: 4120.0}) == [
        "botan/pretrain/T0.440/t02", "botan/finetune/T0.440/t06", "ntgnn/T0.440/t03"]
    # no time grid known: the last time index of the family
    assert default_tasks(tasks, {}, {}) == ["botan/pretrain/T0.440/t02", "botan/finetune/T0.440/t08",
                                            "ntgnn/T0.440/t08"]


def _task(model, temp, k, time, s=None, e=None):
    scores = {}
    if s is not None:
        scores["S"] = s
    if e is not None:
        scores["E"] = e
    return {"task": f"{model}/T{temp:.3f}/t{k:02d}", "model": model, "temperature": temp, "time_index": k,
            "time": time, "scores": scores}


def test_rho_series_groups_by_temperature_and_model_sorted_by_time():
    full = {"median": 0.5, "best": 0.6, "worst": 0.4, "ensemble": 0.55, "ceiling": 0.9}
    tasks = [_task("botan", 0.44, 1, 10.0, s=full, e=dict(full, median=0.7)),
             _task("botan", 0.44, 0, 1.0, s=dict(full, median=0.8, ceiling=0.95)),
             _task("ntgnn", 0.44, 0, 1.0, s=dict(full, ceiling=0.97)),
             _task("ridge", 0.5, 0, 2.0, s={"ensemble": 0.3})]
    s = rho_series(tasks, "S")
    assert sorted(s) == [0.44, 0.5] and sorted(s[0.44]) == ["botan", "ntgnn"]
    assert s[0.44]["botan"].times.tolist() == [1.0, 10.0]
    assert s[0.44]["botan"].median.tolist() == [0.8, 0.5]
    ridge = s[0.5]["ridge"]
    assert ridge.ensemble.tolist() == [0.3] and np.isnan(ridge.median).all() and np.isnan(ridge.ceiling).all()
    e = rho_series(tasks, "E")
    assert list(e) == [0.44] and list(e[0.44]) == ["botan"] and e[0.44]["botan"].median.tolist() == [0.7]
    times, ceiling = ceiling_curve(list(s[0.44].values()))
    assert times.tolist() == [1.0, 10.0] and ceiling.tolist() == pytest.approx([0.96, 0.9])
    assert ceiling_curve([ridge])[0].size == 0


def test_rho_against_weight_needs_two_different_p(tmp_path):
    full = {"median": 0.5, "best": 0.6, "worst": 0.4, "ensemble": 0.55, "ceiling": 0.9}
    tasks = [dict(_task("botan", 0.44, 3, 130.0, s=full, e=full), task="botan/finetune/T0.440/t03")]
    points = rho_against_weight([(tmp_path / "a", 0.8, tasks), (tmp_path / "b", 0.0, tasks)], 0.44, 3)
    assert [p.node_weight for p in points] == [0.0, 0.8]
    assert points[0].scores["E"]["best"] == 0.6
    with pytest.raises(UserError, match="at least two different p"):
        rho_against_weight([(tmp_path / "a", 0.4, tasks), (tmp_path / "b", 0.4, tasks)], 0.44, 3)
    with pytest.raises(UserError, match="no BOTAN score at T = 0.44, time index 5"):
        rho_against_weight([(tmp_path / "a", 0.4, tasks)], 0.44, 5)


def test_arrow_scale_maps_the_95th_percentile_to_the_drawn_length():
    vectors = np.zeros((100, 2))
    vectors[:, 0] = np.linspace(0.0, 0.99, 100)        # lengths 0 … 0.99 in steps of 0.01
    assert arrow_scale(vectors, drawn_length=0.5) == pytest.approx(np.quantile(vectors[:, 0], 0.95) / 0.5)
    assert arrow_scale(np.zeros((3, 2))) > 0            # all zero: no division by zero in quiver


def test_choose_configuration_prefers_the_first_test_configuration_of_the_lowest_temperature():
    catalog = np.array([(0, 0.5, 0), (1, 0.44, 0), (2, 0.44, 1), (3, 0.44, 1), (4, 0.5, 0)],
                       dtype=[("id", "i8"), ("temperature", "f8"), ("split", "i1")])
    assert choose_configuration(catalog, None, None) == (2, 0.44, "test")
    assert choose_configuration(catalog, 0.5, None) == (0, 0.5, "train")        # no test split at T = 0.5
    assert choose_configuration(catalog, None, 4) == (4, 0.5, "train")
    with pytest.raises(UserError, match="--configuration 9: no such configuration"):
        choose_configuration(catalog, None, 9)
    with pytest.raises(UserError, match="not 0.44"):
        choose_configuration(catalog, 0.44, 4)
    with pytest.raises(UserError, match="--temperature 0.6"):
        choose_configuration(catalog, 0.6, None)


def test_save_figure_writes_png_and_pdf_atomically(tmp_path):
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    files = save_figure(fig, tmp_path / "sub" / "line.png")      # a suffix names the same pair
    assert files == [tmp_path / "sub" / "line.png", tmp_path / "sub" / "line.pdf"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["line.pdf", "line.png"]   # no temporaries


def test_report_figures_keeps_written_figures_with_their_captions(tmp_path):
    from hpc_botan.plots.figures import FigureOutcome, report_figures

    outcomes = [FigureOutcome("maps", [tmp_path / "maps.png", tmp_path / "maps.pdf"], "Maps."),
                FigureOutcome("rho-nodes", [], "no eval/metrics.json"),
                FigureOutcome("fs", [tmp_path / "fs.png", tmp_path / "fs.pdf"], "F_s.")]
    assert report_figures(outcomes) == [(tmp_path / "maps.png", "Maps."), (tmp_path / "fs.png", "F_s.")]
    assert [o.written for o in outcomes] == [True, False, True]


@pytest.mark.parametrize("tasks", [["botan/pretrain/T0.640/t02", "botan/finetune/T0.640/multi", "ntgnn/T0.640/multi"],
                                   ["ntgnn/T0.640/multi"]])
def test_learning_figure_titles_lie_inside_the_figure(tasks, monkeypatch, tmp_path):
    """The quick preset's panels (multi-time tasks: the longest titles) are not clipped at the figure's edge."""
    import hpc_botan.plots.learning as learning

    drawn = []
    monkeypatch.setattr(learning, "save_figure", lambda fig, base: drawn.append(fig) or [])
    epochs = np.arange(5.0)
    curve = {"epoch": epochs, "train_loss": 1 / (1 + epochs), "val_loss": 1.2 / (1 + epochs),
             "val_rho_S": 0.1 * epochs, "val_rho_E": 0.05 * epochs}
    learning.plot_learning_curves({name: [(0, curve), (1, curve)] for name in tasks}, tmp_path / "learning")
    fig = drawn[0]
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == len(tasks)
    for ax in titled:
        box, panel = ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)
        # inside the page, and no wider than its own panel (else it runs into the next title or off the page)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and box.y1 <= page.y1, (ax.get_title(), box, page)
        assert panel.x0 <= box.x0 and box.x1 <= panel.x1, (ax.get_title(), box, panel)

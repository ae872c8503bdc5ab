"""The report's comparison of BOTAN with its baselines, on hand-made task dicts."""
import math

from hpc_botan.report.summary import comparison_rows, verdict


def _task(model, time, s=None, e=None, ceiling=0.9, per=None):
    scores = {}
    for target, value in (("S", s), ("E", e)):
        if value is not None:
            scores[target] = {"ensemble": value, "ceiling": ceiling,
                              "per_configuration": per if per is not None else [value - 0.1, value + 0.1, value]}
    return {"model": model, "temperature": 0.64, "time": time, "scores": scores}


TASKS = [_task("botan", 0.1, s=0.6, e=0.5), _task("ridge", 0.1, s=0.5, e=0.55), _task("density", 0.1, s=0.3),
         _task("distance", 0.1, e=0.4), _task("ntgnn", 0.1, s=0.62),
         _task("botan", 16.5, s=0.4, e=0.3), _task("ridge", 16.5, s=0.35, e=0.2), _task("density", 16.5, s=0.1),
         _task("distance", 16.5, e=0.25)]


def test_rows_per_time_point_with_the_best_marked():
    rows = comparison_rows(TASKS, "S")
    assert [(r.temperature, r.time) for r in rows] == [(0.64, 0.1), (0.64, 16.5)]
    assert set(rows[0].cells) == {"botan", "ntgnn", "ridge", "density"}
    assert rows[0].best() == "ntgnn" and rows[1].best() == "botan"
    assert rows[0].ceiling == 0.9
    # standard error over the 3 configurations: sd of (x − 0.1, x + 0.1, x) / √3
    assert math.isclose(rows[0].cells["botan"].stderr, 0.1 / math.sqrt(3))
    assert rows[0].botan_beats_baselines() and rows[1].botan_beats_baselines()
    assert [r.botan_beats_baselines() for r in comparison_rows(TASKS, "E")] == [False, True]


def test_the_first_sentence_says_where_botan_won():
    text = verdict(TASKS)
    assert text.startswith("On this run, for S_i BOTAN beat every baseline at every evaluated time point")
    assert "for E_ij BOTAN beat every baseline at T = 0.64: t = 16.5, but not at T = 0.64: t = 0.1 (ridge ahead)" \
        in text
    lost = [t for t in TASKS if not (t["model"] == "botan")] + [_task("botan", 0.1, s=0.2), _task("botan", 16.5, s=0.0)]
    assert "for S_i BOTAN beat no baseline at any time point (ntgnn, ridge ahead)" in verdict(lost)
    assert verdict([_task("ridge", 1.0, s=0.5)]).startswith("No BOTAN model")

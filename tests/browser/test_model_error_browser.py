"""The model-error page in real Chromium: the charts' datasets, read from the Chart.js
instances, match the database (a series per evaluation set version, each point's x and y,
the Wilson band, the current model's diamond drawn whole); legends, ticks and the table
read cleanly; nothing breaks the content security policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.factories import UserFactory, evaluation_history
from training.ml.intervals import errors_of, wilson_interval
from training.models import EvaluationScore, Promotion, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

# every dataset of a chart, and where its points were drawn
READ_CHART = """(id) => {
  const chart = Chart.getChart(document.getElementById(id));
  return {
    width: chart.width,
    height: chart.height,
    datasets: chart.data.datasets.map((d, i) => ({
      label: d.label,
      role: d.role,
      series: d.series,
      metric: d.metric,
      dash: d.borderDash || null,
      fill: d.fill,
      points: d.data.map((p, j) => {
        const element = chart.getDatasetMeta(i).data[j];
        return {
          run: p.run.id,
          x: p.x,
          y: Math.round(p.y * 10000) / 10000,
          style: element.options.pointStyle,
          radius: element.options.radius,
          px: element.x,
          py: element.y,
        };
      }),
    })),
    legend: chart.legend.legendItems.map((item) => [item.text, item.lineDash, item.pointStyle]),
    ticks: chart.scales.x.ticks.map((t) => t.label),
  };
}"""


@pytest.fixture
def history():
    UserFactory(username="cora", role="curator")
    return evaluation_history()


def _expected(sets, x_of) -> dict[str, dict]:
    """Per line label: its points [run, x, y] by x (then date), and its band's edges."""
    expected = {}
    for number, evaluation in sets.items():
        scores = sorted(
            EvaluationScore.objects.filter(evaluation=evaluation).select_related("run__version"),
            key=lambda s: (x_of(s.run), s.run.finished_at),
        )
        label = f"evaluation v{number} · 10 classes · {evaluation.images} images"
        for metric, name in (("top1", "top-1"), ("top5", "top-5")):
            rates = [(s, getattr(s, f"{metric}_error")) for s in scores]
            bands = [wilson_interval(errors_of(rate, s.images), s.images) for s, rate in rates]
            expected[f"{label}, {name}"] = {
                "points": [[s.run.pk, x_of(s.run), round(rate * 100, 4)] for s, rate in rates],
                "low": [round(low * 100, 4) for low, _ in bands],
                "high": [round(high * 100, 4) for _, high in bands],
            }
    return expected


def _check_chart(chart: dict, expected: dict, current_id: int) -> None:
    lines = {d["label"]: d for d in chart["datasets"] if d["role"] == "line"}
    assert sorted(lines) == sorted(expected)
    for label, want in expected.items():
        line = lines[label]
        assert [[p["run"], p["x"], p["y"]] for p in line["points"]] == want["points"]
        low, high = (
            next(
                d
                for d in chart["datasets"]
                if d["label"] == f"{label.rsplit(', ', 1)[0]}, "
                f"{label.rsplit(', ', 1)[1]}, 95 % {side}"
            )
            for side in ("low", "high")
        )
        assert [p["y"] for p in low["points"]] == want["low"]
        assert [p["y"] for p in high["points"]] == want["high"]
        assert (low["fill"], high["fill"]) == (False, "-1")  # shaded between the edges
        # the diamond follows its run, whatever the points' order
        assert [p["style"] for p in line["points"]] == [
            "rectRot" if p["run"] == current_id else "circle" for p in line["points"]
        ]
        for point in line["points"]:  # drawn whole inside the canvas
            r = point["radius"]
            assert (
                r <= point["px"] <= chart["width"] - r and r <= point["py"] <= chart["height"] - r
            )
    assert len(chart["datasets"]) == 3 * len(expected)  # a line and its band's two edges


def test_the_charts_match_the_database(page: Page, log_in, history, screenshot):
    runs, sets, unscored = history
    log_in("cora", "/curate/training/error/")

    by_size = page.evaluate(READ_CHART, "error-by-size")
    by_date = page.evaluate(READ_CHART, "error-by-date")

    current = runs[2].pk
    _check_chart(by_size, _expected(sets, lambda run: run.version.images), current)
    _check_chart(
        by_date, _expected(sets, lambda run: int(run.finished_at.timestamp() * 1000)), current
    )
    # the current model is the third point by size on v2 but the second by date
    v2_top1 = next(d for d in by_size["datasets"] if d["label"].endswith("480 images, top-1"))
    assert [p["run"] for p in v2_top1["points"]] == [
        r.pk for r in (runs[1], runs[3], runs[2], runs[4])
    ]
    # the legend: one entry per line, drawn solid for top-1 and dashed for top-5
    assert by_size["legend"] == [
        ["evaluation v1 · 10 classes · 200 images, top-1", [], "line"],
        ["evaluation v1 · 10 classes · 200 images, top-5", [6, 4], "line"],
        ["evaluation v2 · 10 classes · 480 images, top-1", [], "line"],
        ["evaluation v2 · 10 classes · 480 images, top-5", [6, 4], "line"],
    ]
    # runs at 09:00 on five days: a tick at each UTC midnight on the axis, its date alone
    assert by_date["ticks"] == [f"2026-11-0{day}" for day in range(2, 6)]
    assert len(set(by_size["ticks"])) == len(by_size["ticks"])
    # the table: one decimal, the current model marked; the unscored run listed, not plotted
    row = page.locator(f'table[data-evaluation="{sets[2].pk}"] tr[data-run="{current}"]')
    expect(row).to_contain_text("10.0 %")
    expect(row).to_contain_text("current")
    expect(row).to_contain_text("7.6 % \N{EN DASH} 13.0 %")
    expect(page.locator(f'#unscored tr[data-run="{unscored.pk}"]')).to_contain_text("manual")
    expect(
        page.get_by_text("1 finished run has no evaluation score and is not plotted")
    ).to_be_visible()
    assert unscored.pk not in {p["run"] for d in by_size["datasets"] for p in d["points"]}
    screenshot("model-error")
    assert page.problems() == []


def test_a_click_on_the_current_models_diamond_opens_its_run(
    page: Page, log_in, history, screenshot
):
    runs, sets, _ = history
    Promotion.objects.create(
        candidate=runs[2],
        incumbent=runs[1],
        evaluation=sets[2],
        promoted=True,
        candidate_top1_error=0.1,
        incumbent_top1_error=0.2,
        only_candidate_right=52,
        only_incumbent_right=4,
        p_value=1e-11,
        margin=0.5,
        reason="10.0 % against 20.0 % on the same 480 images",
    )
    log_in("cora", "/curate/training/error/")
    chart = page.evaluate(READ_CHART, "error-by-size")
    line = next(d for d in chart["datasets"] if d["label"].endswith("480 images, top-1"))
    diamond = next(p for p in line["points"] if p["style"] == "rectRot")

    page.locator("#error-by-size").scroll_into_view_if_needed()
    box = page.locator("#error-by-size").bounding_box()
    page.mouse.click(box["x"] + diamond["px"], box["y"] + diamond["py"])

    page.wait_for_url(f"**/curate/training/runs/{runs[2].pk}/")
    expect(page.locator("#evaluation-scores")).to_contain_text("10.0 %")
    expect(page.locator("#promotions")).to_contain_text("< 0.0001")
    screenshot("run-evaluation")
    assert page.problems() == []


def test_runs_minutes_apart_get_round_time_ticks_that_do_not_run_together(
    page: Page, log_in, history
):
    # given the demo's pace: a retrained run every 7 minutes
    runs, _, _ = history
    start = runs[0].finished_at.replace(hour=14, minute=3)
    for i, run in enumerate(runs):
        TrainingRun.objects.filter(pk=run.pk).update(finished_at=start + timedelta(minutes=7 * i))
    log_in("cora", "/curate/training/error/")

    ticks = page.evaluate(
        """() => Chart.getChart(document.getElementById("error-by-date")).scales.x.ticks
            .map((t) => t.label)"""
    )

    # then 5-minute steps, each the day over its time, in order and none repeated
    assert ticks == [["2026-11-01", f"14:{m:02d}"] for m in (5, 10, 15, 20, 25, 30)]
    assert page.problems() == []

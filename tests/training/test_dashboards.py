"""The model-error dashboard: one series per evaluation set version with exact points and
Wilson bands, unscored runs listed apart, a fixed number of queries; curators only."""

from __future__ import annotations

import pytest

from tests.factories import evaluation_history, run_history
from training.models import EvaluationScore, EvaluationSet
from training.services.dashboards import model_error_history, score_bands

pytestmark = pytest.mark.django_db


def test_model_error_has_one_series_per_evaluation_version_in_two_queries(
    curator_api, django_assert_num_queries
):
    runs, sets, unscored = evaluation_history()

    with django_assert_num_queries(2):
        data = curator_api.get("/api/training/model-error/").json()

    assert data["series"] == [
        {
            "id": sets[1].pk,
            "number": 1,
            "images": 200,
            "label": "evaluation v1 · 10 classes · 200 images",
            "points": 2,
        },
        {
            "id": sets[2].pk,
            "number": 2,
            "images": 480,
            "label": "evaluation v2 · 10 classes · 480 images",
            "points": 4,
        },
    ]
    # by set, then labelled images, then date: run 3 (on the 400-image version, finished
    # after run 2) comes before the current model, run 2
    assert [
        (p["evaluation"], p["id"], p["labeled"], p["top1_error"], p["top5_error"], p["current"])
        for p in data["points"]
    ] == [
        (sets[1].pk, runs[0].pk, 100, 54 / 200, 20 / 200, False),
        (sets[1].pk, runs[1].pk, 400, 36 / 200, 8 / 200, False),
        (sets[2].pk, runs[1].pk, 400, 96 / 480, 24 / 480, False),
        (sets[2].pk, runs[3].pk, 400, 120 / 480, 30 / 480, False),
        (sets[2].pk, runs[2].pk, 900, 48 / 480, 12 / 480, True),
        (sets[2].pk, runs[4].pk, 900, 72 / 480, 19 / 480, False),
    ]
    current = data["points"][4]
    assert [round(current[k], 6) for k in ("top1_low", "top1_high", "top5_low", "top5_high")] == [
        0.076257,
        0.130095,
        0.014358,
        0.043185,
    ]
    assert (current["trigger"], current["series"], current["images"]) == (
        "schedule",
        "efficientnet_lite0 · feature_extraction",
        480,
    )
    assert current["finished_at"] == "2026-11-03T09:00:00+00:00"
    assert current["url"] == f"/curate/training/runs/{runs[2].pk}/"
    assert [(r["id"], r["trigger"], r["labeled"]) for r in data["unscored"]] == [
        (unscored.pk, "manual", 900)
    ]


def test_the_page_reads_in_the_same_queries_however_many_runs_and_sets(
    client, curator, django_assert_num_queries
):
    runs, sets, unscored = evaluation_history()
    client.force_login(curator)
    with django_assert_num_queries(4):  # session, user, scores, unscored runs
        client.get("/curate/training/error/")

    # a third evaluation version scoring every run, and two more runs without a score
    third = EvaluationSet.objects.create(
        category_key=sets[2].category_key, number=3, classes=[], counts=[], images=10
    )
    for run in [*runs, unscored]:
        EvaluationScore.objects.create(
            run=run,
            evaluation=third,
            images=10,
            top1_error=0.1,
            top5_error=0.0,
            top1_correct="0" + "1" * 9,
            top5_correct="1" * 10,
        )
    for _ in range(2):
        unscored.pk = None
        unscored.save()

    with django_assert_num_queries(4):
        page = client.get("/curate/training/error/").content.decode()

    assert page.count('<tr data-run="') == 6 + 6 + 2
    assert "evaluation v3 · 0 classes · 10 images" in page


def test_bands_are_wilson_intervals_of_the_stored_rates():
    bands = score_bands(480, 48 / 480, 0.0)

    assert {k: round(v, 6) for k, v in bands.items()} == {
        "top1_low": 0.076257,
        "top1_high": 0.130095,
        "top5_low": 0.0,
        "top5_high": 0.007939,
    }


def test_runs_without_an_evaluation_score_are_listed_not_plotted(client, curator):
    run_history()
    client.force_login(curator)

    page = client.get("/curate/training/error/").content.decode()
    data = model_error_history()

    assert (data["series"], data["points"], len(data["unscored"])) == ([], [], 5)
    assert "No run has been scored on an evaluation set yet" in page
    assert 'id="error-by-size"' not in page
    assert "5 finished runs have no evaluation score and are not plotted" in page


def test_workers_get_403_on_the_dashboard_and_its_json(worker_api, client, worker):
    client.force_login(worker)

    assert worker_api.get("/api/training/model-error/").status_code == 403
    assert client.get("/curate/training/error/").status_code == 403


def test_the_page_says_what_to_do_when_no_run_has_finished(client, curator):
    client.force_login(curator)

    page = client.get("/curate/training/error/").content.decode()

    assert "No finished run yet." in page
    assert 'id="error-by-date"' not in page

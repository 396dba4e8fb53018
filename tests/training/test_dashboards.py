"""The model-error dashboard's JSON: every finished run once, by series, with exact values,
in one query; curators only."""

from __future__ import annotations

import pytest

from tests.factories import run_history

pytestmark = pytest.mark.django_db


def test_model_error_lists_finished_runs_by_series_in_one_query(
    curator_api, django_assert_num_queries
):
    runs = run_history()

    with django_assert_num_queries(1):
        data = curator_api.get("/api/training/model-error/").json()

    assert [
        (r["id"], r["labeled"], r["top1_error"], r["top5_error"], r["current"])
        for r in data["runs"]
    ] == [
        (runs[0].pk, 100, 0.30, 0.10, False),
        (runs[1].pk, 400, 0.20, 0.05, False),
        (runs[2].pk, 900, 0.12, 0.02, True),
        (runs[3].pk, 400, 0.25, 0.08, False),
        (runs[4].pk, 900, 0.15, 0.04, False),
    ]
    assert data["series"] == [
        {"name": "efficientnet_lite0 · feature_extraction", "runs": [r.pk for r in runs[:3]]},
        {"name": "resnet18 · fine_tune", "runs": [runs[3].pk, runs[4].pk]},
    ]
    assert data["runs"][0]["finished_at"] == "2026-11-01T09:00:00+00:00"
    assert data["runs"][2]["url"] == f"/curate/training/runs/{runs[2].pk}/"


def test_workers_get_403_on_the_dashboard_and_its_json(worker_api, client, worker):
    client.force_login(worker)

    assert worker_api.get("/api/training/model-error/").status_code == 403
    assert client.get("/curate/training/error/").status_code == 403


def test_the_page_says_what_to_do_when_no_run_has_finished(client, curator):
    client.force_login(curator)

    page = client.get("/curate/training/error/").content.decode()

    assert "No finished run yet." in page
    assert 'id="error-by-date"' not in page

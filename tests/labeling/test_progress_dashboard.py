"""The labeling-progress dashboard: per-category counts, votes per decided item, agreement and
target progress computed in the database (exact values, pinned queries), votes per hour, a
clear 400 for a bad window, and workers kept out."""

from __future__ import annotations

import pytest

from tests.factories import progress_seed

pytestmark = pytest.mark.django_db


def test_progress_counts_states_votes_agreement_and_targets_in_three_queries(
    curator_api, worker, django_assert_num_queries, settings
):
    settings.CROWDNET_CATEGORY_TARGET = 1000
    progress_seed(worker)

    with django_assert_num_queries(3):
        data = curator_api.get("/api/progress/").json()

    cat, dog, owl = data["categories"]
    assert {
        k: cat[k] for k in ("open", "accepted", "rejected", "review", "boxed", "target", "progress")
    } == {
        "open": 1,
        "accepted": 2,
        "rejected": 1,
        "review": 1,
        "boxed": 1,
        "target": 4,
        "progress": 0.5,
    }
    # decided: 3-0, 2-1 and 1-3: 10 votes over 3 items; majority shares 1, 2/3, 3/4
    assert cat["votes_per_decided"] == round(10 / 3, 3)
    assert cat["agreement"] == round((1 + 2 / 3 + 3 / 4) / 3, 4)
    assert (dog["accepted"], dog["target"], dog["progress"], dog["agreement"]) == (
        1,
        1000,
        0.001,
        1.0,
    )
    assert (owl["accepted"], owl["votes_per_decided"], owl["agreement"]) == (0, None, None)
    assert [row["votes"] for row in data["votes_per_hour"]] == [3, 2]
    assert data["hours"] == 72


def test_a_bad_window_is_a_400_and_workers_are_kept_out(curator_api, worker_api, client, worker):
    bad = curator_api.get("/api/progress/?hours=0")
    client.force_login(worker)

    assert (bad.status_code, bad.json()) == (
        400,
        {"detail": "hours must be a whole number from 1 to 720."},
    )
    assert curator_api.get("/api/progress/?hours=abc").status_code == 400
    assert worker_api.get("/api/progress/").status_code == 403
    assert client.get("/curate/progress/").status_code == 403


def test_the_page_says_what_to_do_without_categories(client, curator):
    client.force_login(curator)

    page = client.get("/curate/progress/").content.decode()

    assert "No category yet." in page
    assert 'id="states-chart"' not in page

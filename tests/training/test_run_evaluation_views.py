"""What the Training and run pages say about comparability: each run's trigger, its scores on
the evaluation sets with Wilson bands, its promotion decisions, one format for error rates."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import evaluation_history
from training.models import Promotion
from training.templatetags.training_extras import p_value, percent

pytestmark = pytest.mark.django_db

NBSP = "\N{NO-BREAK SPACE}"
# the Training page's 9 (session, user, the current model, its version, the run count, the
# versions listed and in the form, the page of runs) and one for the page's evaluation scores
QUERIES = 10
TO = "\N{EN DASH}"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.043, "4.3 %"), (0.0039, "0.4 %"), (0.04, "4.0 %"), (0.0, "0.0 %"), (1.0, "100.0 %")],
)
def test_error_rates_are_written_to_one_decimal(value, text):
    assert percent(value) == text.replace(" ", NBSP)
    assert percent(None) == "—"


def test_p_values_keep_four_decimals():
    assert [p_value(v) for v in (0.0123456, 0.00001, None)] == ["0.0123", "< 0.0001", "—"]


def test_the_training_page_shows_each_runs_trigger_and_newest_evaluation_score(
    client, curator, django_assert_num_queries
):
    runs, _, unscored = evaluation_history()
    client.force_login(curator)
    client.get(reverse("curate-training"))

    with django_assert_num_queries(QUERIES):
        page = client.get(reverse("curate-training")).content.decode()

    assert page.count('<td data-role="trigger">schedule</td>') == 2
    # the three other finished runs, the unscored one, a failed and a running one
    assert page.count('<td data-role="trigger">manual</td>') == 6
    assert "<dt>Trigger</dt><dd>schedule</dd>" in page  # the current model, run 2
    assert f'<td class="num">{percent(runs[2].top1_error)}</td>' in page

    def evaluation_cell(run):
        row = page[page.index(f'<a href="/curate/training/runs/{run.pk}/">') :]
        cell = row[row.index('data-role="evaluation">') :]
        return cell[len('data-role="evaluation">') : cell.index("</td>")]

    assert evaluation_cell(runs[1]) == f'20.0{NBSP}%<br><span class="hint">v2</span>'  # not v1
    assert evaluation_cell(runs[0]) == f'27.0{NBSP}%<br><span class="hint">v1</span>'
    assert evaluation_cell(unscored) == "—"


def test_the_run_page_shows_its_evaluation_scores_bands_and_promotions(
    client, curator, django_user_model, django_assert_num_queries
):
    runs, sets, _ = evaluation_history()
    hand = django_user_model.objects.create_user("hana<script>")
    Promotion.objects.create(
        candidate=runs[1],
        incumbent=runs[0],
        evaluation=sets[1],
        promoted=True,
        candidate_top1_error=36 / 200,
        incumbent_top1_error=54 / 200,
        only_candidate_right=25,
        only_incumbent_right=7,
        p_value=0.00123,
        margin=0.5,
        reason="18.0 % against 27.0 % on the same 200 images; McNemar p 0.0012 < 0.05",
    )
    Promotion.objects.create(
        candidate=runs[1],
        incumbent=runs[2],
        evaluation=sets[2],
        by=hand,
        promoted=False,
        candidate_top1_error=96 / 480,
        incumbent_top1_error=48 / 480,
        only_candidate_right=3,
        only_incumbent_right=51,
        p_value=0.9999,
        reason="<b>worse</b> than the current model",
    )
    client.force_login(curator)
    url = reverse("curate-training-run", args=[runs[1].pk])
    client.get(url)

    # session, user, the run's 3 and its deferred layer table, the scores, the promotions
    with django_assert_num_queries(8):
        page = client.get(url).content.decode()

    assert '<dt>Trigger</dt><dd data-role="trigger">schedule</dd>' in page
    assert "Validation split of dataset v2, not comparable across versions" in page
    assert f"<dt>Top-1 error, validation split</dt><dd>20.0{NBSP}%" in page
    v2 = page.index(f'<tr data-evaluation="{sets[2].pk}">')
    v1 = page.index(f'<tr data-evaluation="{sets[1].pk}">')
    assert v2 < v1  # the newest set first
    assert (
        f'<tr data-evaluation="{sets[2].pk}"><th scope="row">evaluation v2 · 10 classes · '
        f'480 images</th><td class="num">20.0{NBSP}%</td><td class="num nowrap">16.7{NBSP}% '
        f'{TO} 23.8{NBSP}%</td><td class="num">5.0{NBSP}%</td><td class="num nowrap">3.4{NBSP}% '
        f"{TO} 7.3{NBSP}%</td>"
    ) in page
    automatic, by_hand = Promotion.objects.order_by("id")
    assert page.index(f'data-promotion="{by_hand.pk}"') < page.index(
        f'data-promotion="{automatic.pk}"'
    )
    item = page[page.index(f'data-promotion="{automatic.pk}"') :].split("</li>")[0]
    assert ('<p><span class="badge badge-done">promoted</span> <time datetime=') in item
    assert (
        f', against <a href="/curate/training/runs/{runs[0].pk}/">run {runs[0].pk}</a> on '
        "evaluation v1 · 10 classes · 200 images, automatic.</p>"
    ) in item
    facts = [
        ("This run's top-1 error", f"18.0{NBSP}%"),
        ("The other model's top-1 error", f"27.0{NBSP}%"),
        ("Images only this run gets right", "25"),
        ("Images only the other gets right", "7"),
        ("p-value (McNemar)", "0.0012"),
        ("Margin", "0.5 points"),
    ]
    for name, value in facts:
        assert f"<dt>{name}</dt><dd>{value}</dd>" in item
    item = page[page.index(f'data-promotion="{by_hand.pk}"') :].split("</li>")[0]
    assert '<span class="badge badge-failed">not promoted</span>' in item
    assert ", by hana&lt;script&gt;.</p>" in item
    assert '<p class="hint" data-role="reason">&lt;b&gt;worse&lt;/b&gt; than the current' in item


def test_a_run_never_scored_says_it_is_left_off_the_chart(client, curator):
    _, _, unscored = evaluation_history()
    client.force_login(curator)

    page = client.get(reverse("curate-training-run", args=[unscored.pk])).content.decode()

    assert "Not scored on an evaluation set yet, so it is left off the" in page
    assert "No promotion decision on this run yet." in page
    assert '<dt>Trigger</dt><dd data-role="trigger">manual</dd>' in page

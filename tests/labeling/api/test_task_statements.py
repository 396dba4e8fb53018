"""The statements a verify round trip costs: pinned, so per-answer cost cannot creep back."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg.sql import Literal

from labeling.models import Box, Candidate, MicroTask, TaskItem, Vote
from labeling.services.microtasks import CONTROL_WINDOW, gold_mark, worker_profile
from labeling.services.worker_coins import crowd_newcomer
from tests.factories import candidate_pool, worker_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the two-statement lease is PostgreSQL's; SQLite takes the ORM path")
    settings.CROWDNET_GATE_MIN_SECONDS_PER_ITEM = 0.0


def _gold_pool(category, size: int, *, gold: int, seed: int) -> list[Candidate]:
    """``size`` open pool items, the first ``gold`` of them made curated gold (answer yes)."""
    pool = candidate_pool(category, size, seed=seed)
    for candidate in pool[:gold]:
        gold_mark(candidate=candidate, answer=True)
    return pool


@pytest.mark.parametrize("gold_rate", [0.0, 1.0])
def test_a_verify_lease_costs_the_same_statements_for_a_real_or_a_control_item(
    category, settings, django_assert_num_queries, gold_rate
):
    # given a pool next to curated gold, and a worker who answered once already
    settings.CROWDNET_GOLD_RATE = gold_rate
    _gold_pool(category, 12, gold=3, seed=300)
    client, _ = worker_client("ann")
    first = client.get("/api/tasks/next/?kind=verify").json()
    answer = [{"item": first["items"][0]["id"], "answer": "yes"}]
    client.post(f"/api/tasks/{first['id']}/answer/", {"answers": answer}, format="json")

    # when they ask for the next task: savepoint, plan mode, profile, open tasks and pick in one,
    # lease, release
    with django_assert_num_queries(5):
        response = client.get("/api/tasks/next/?kind=verify")

    # then it is served, a control exactly when the rate says so
    assert response.status_code == 200
    served = response.json()["items"][0]["id"]
    assert TaskItem.objects.get(uid=served).is_gold is (gold_rate == 1.0)


@pytest.mark.parametrize("gold_rate", [0.0, 1.0])
def test_answering_a_verify_task_costs_pinned_statements_for_a_real_or_a_control_item(
    category, settings, django_assert_num_queries, gold_rate
):
    # given a leased verify task (a control item exactly when the rate says so) next to
    # curated gold, two earlier votes on its item from others, and the crowd's control totals
    # already cached (as they are for a minute at a time)
    settings.CROWDNET_GOLD_RATE = gold_rate
    _gold_pool(category, 12, gold=3, seed=400)
    for name in ("bob", "cid"):
        other, _ = worker_client(name)
        settings.CROWDNET_GOLD_RATE = 0.0
        earlier = other.get("/api/tasks/next/?kind=verify").json()
        answer = [{"item": earlier["items"][0]["id"], "answer": "yes"}]
        other.post(f"/api/tasks/{earlier['id']}/answer/", {"answers": answer}, format="json")
    settings.CROWDNET_GOLD_RATE = gold_rate
    crowd_newcomer()
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=verify").json()
    answer = [{"item": task["items"][0]["id"], "answer": "yes"}]

    # when it is answered: savepoint, plan mode; the task (by uid or token), profile and items,
    # locked; vote and tally; the candidate's votes with their voters' records and the category's
    # capped decided counts; decision, credits, record, task and lease; release
    with django_assert_num_queries(7):
        response = client.post(
            f"/api/tasks/{task['id']}/answer/",
            {"answers": answer, "client_token": "a"},
            format="json",
        )

    # then it is recorded; a real item's third yes from newcomers moves its posterior and
    # asks one more vote (what the ORM path decides, too)
    assert response.status_code == 201
    assert response.json()["answered_tasks"] == 1
    item = TaskItem.objects.select_related("candidate").get(uid=task["items"][0]["id"])
    assert item.is_gold is (gold_rate == 1.0)
    vote = Vote.objects.get(worker__username="ann")
    assert (vote.counted, vote.is_gold) == (gold_rate == 0.0, gold_rate == 1.0)
    if gold_rate == 0.0:
        candidate = item.candidate
        assert (candidate.yes_votes, candidate.state, candidate.votes_needed) == (3, "open", 4)
        assert round(candidate.posterior, 4) == 0.8889


@pytest.mark.parametrize(("gold_rate", "gold_cells"), [(0.0, 1), (0.5, 4)])
def test_a_grid_lease_costs_pinned_statements_with_its_gold_cells(
    category, settings, django_assert_num_queries, gold_rate, gold_cells
):
    # given a pool of 20 with 10 curated gold items, and a worker who answered one grid already
    settings.CROWDNET_GOLD_RATE = gold_rate
    _gold_pool(category, 30, gold=10, seed=500)
    client, _ = worker_client("ann")
    first = client.get("/api/tasks/next/?kind=grid").json()
    answers = [{"item": item["id"], "selected": True} for item in first["items"]]
    client.post(f"/api/tasks/{first['id']}/answer/", {"answers": answers}, format="json")

    # when they ask for the next grid: savepoint, plan mode, profile and kinds, pick, lease, release
    with django_assert_num_queries(6):
        response = client.get("/api/tasks/next/?kind=grid")

    # then it is a full grid with its gold cells, none of which the worker saw before
    assert response.status_code == 200
    task = response.json()
    assert (task["kind"], len(task["items"])) == ("grid", 9)
    items = TaskItem.objects.filter(task__uid=task["id"])
    assert sorted(items.values_list("position", flat=True)) == list(range(9))
    assert items.filter(is_gold=True).count() == gold_cells
    seen = TaskItem.objects.filter(task__uid=first["id"]).values_list("candidate_id", flat=True)
    assert not items.filter(candidate_id__in=list(seen)).exists()


def test_a_drawing_lease_is_two_statements(category, django_assert_num_queries):
    # given three accepted images waiting for boxes, one of them asked first and leased by
    # another worker, and a worker with a profile
    waiting = candidate_pool(category, 3, seed=600)
    Candidate.objects.filter(pk__in=[c.pk for c in waiting]).update(
        state="accepted", box_state="draw"
    )
    Candidate.objects.filter(pk=waiting[2].pk).update(priority=5)
    other, _ = worker_client("bob")
    assert other.get("/api/tasks/next/?kind=draw").json()["items"][0]["width"] == 80
    client, ann = worker_client("ann")
    worker_profile(ann)

    # when a worker asks for a drawing: savepoint, plan mode, profile and kinds, pick, lease (task,
    # item and the body), release
    with django_assert_num_queries(6):
        response = client.get("/api/tasks/next/?kind=draw")

    # then they get the next image nobody holds, in serving order
    assert response.status_code == 200
    served = TaskItem.objects.get(uid=response.json()["items"][0]["id"])
    assert served.candidate_id == waiting[0].pk
    assert TaskItem.objects.get(task__worker__username="bob").candidate_id == waiting[2].pk


def test_a_box_check_lease_is_two_statements(category, django_assert_num_queries):
    # given two proposed boxes, one drawn by the worker, one by someone else, and a worker
    # with a profile
    images = candidate_pool(category, 2, seed=700)
    Candidate.objects.update(state="accepted", box_state="verify")
    client, ann = worker_client("ann")
    _, bob = worker_client("bob")
    Box.objects.create(candidate=images[0], worker=ann, x0=1, y0=2, x1=30, y1=40)
    theirs = Box.objects.create(candidate=images[1], worker=bob, x0=3, y0=4, x1=50, y1=44)
    worker_profile(ann)

    # when the worker asks for a box check: savepoint, plan mode, profile and kinds, pick, lease
    # (task, item and the body), release
    with django_assert_num_queries(6):
        response = client.get("/api/tasks/next/?kind=verify_box")

    # then they check the box someone else drew, shown where it was drawn
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert (item["box"], item["width"], item["height"]) == ([3.0, 4.0, 50.0, 44.0], 80, 60)
    assert TaskItem.objects.get(uid=item["id"]).box_id == theirs.pk


def test_a_coverage_lease_is_two_statements_and_shows_the_accepted_boxes(
    category, django_assert_num_queries
):
    # given an image in the coverage check with two accepted boxes and a rejected one
    [image] = candidate_pool(category, 1, seed=800)
    Candidate.objects.update(state="accepted", box_state="coverage")
    _, bob = worker_client("bob")
    for x0, state in [(1, "accepted"), (5, "rejected"), (9, "accepted")]:
        Box.objects.create(candidate=image, worker=bob, x0=x0, y0=2, x1=30, y1=40, state=state)
    client, ann = worker_client("ann")
    worker_profile(ann)

    # when a worker asks for a coverage check: savepoint, plan mode, profile and kinds, pick, lease
    # (task, item, the body and its accepted boxes), release
    with django_assert_num_queries(6):
        response = client.get("/api/tasks/next/?kind=coverage")

    # then the item shows the accepted boxes only, in the order they were drawn
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item["boxes"] == [[1.0, 2.0, 30.0, 40.0], [9.0, 2.0, 30.0, 40.0]]
    assert "box" not in item


def _answer(client, task: dict, answers: list[dict]) -> dict:
    response = client.post(
        f"/api/tasks/{task['id']}/answer/", {"answers": answers, "client_token": "t"}, format="json"
    )
    assert response.status_code == 201
    return response.json()


@pytest.mark.parametrize("control_right", [True, False])
def test_answering_a_grid_costs_the_statements_of_one_verify_answer_control_right_or_wrong(
    category, settings, django_assert_num_queries, control_right
):
    # given a leased grid of 8 pool cells and a gold cell (answer yes), two cells with a vote
    # from someone else, and the crowd's control totals already cached (as they are for a
    # minute at a time)
    settings.CROWDNET_GOLD_RATE = 0.0
    pool = _gold_pool(category, 20, gold=2, seed=900)
    Candidate.objects.filter(pk__in=[c.pk for c in pool[2:4]]).update(yes_votes=1)
    crowd_newcomer()
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=grid").json()
    gold = set(
        TaskItem.objects.filter(task__uid=task["id"], is_gold=True).values_list("uid", flat=True)
    )
    answers = [
        {"item": item["id"], "selected": control_right or item["id"] not in map(str, gold)}
        for item in task["items"]
    ]

    # when it is answered, the control right or wrong: savepoint, plan mode; the task (by uid or
    # token), profile and items, locked; the 9 votes and the 8 tallies; the cells' votes with their
    # voters' records and the category's capped decided counts; the 8 decisions, credits, record,
    # task and leases; release
    with django_assert_num_queries(7):
        stats = _answer(client, task, answers)

    # then every pool cell has its vote, counted (one more yes) only when the control was right
    assert len(gold) == 1
    assert stats["answered_items"] == 9
    cells = [c.pk for c in pool[2:]]
    votes = Vote.objects.filter(worker__username="ann", is_gold=False)
    assert votes.count() == 8
    assert votes.filter(counted=True).count() == (8 if control_right else 0)
    tallies = Candidate.objects.filter(pk__in=cells).values_list("yes_votes", flat=True)
    assert sum(tallies) == (8 if control_right else 0) + 2
    assert Vote.objects.get(worker__username="ann", is_gold=True).correct is control_right


def test_answering_a_drawing_costs_pinned_statements(category, django_assert_num_queries):
    # given a leased drawing
    [image] = candidate_pool(category, 1, seed=910)
    Candidate.objects.update(state="accepted", box_state="draw")
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=draw").json()
    answers = [{"item": task["items"][0]["id"], "boxes": [[1, 2, 30, 40], [5, 6, 50, 44]]}]

    # when two boxes are drawn: savepoint, plan mode; the task (by uid or token), profile and item,
    # locked; the vote and the boxes; the image's stage (settled in one update), record, task and
    # lease; release
    with django_assert_num_queries(6):
        _answer(client, task, answers)

    # then the boxes wait for checks
    assert Candidate.objects.get(pk=image.pk).box_state == "verify"
    assert Box.objects.filter(candidate=image, state="proposed").count() == 2


def test_answering_a_box_check_costs_pinned_statements(category, django_assert_num_queries):
    # given a leased check of the only box on an image
    [image] = candidate_pool(category, 1, seed=920)
    Candidate.objects.update(state="accepted", box_state="verify")
    _, bob = worker_client("bob")
    box = Box.objects.create(candidate=image, worker=bob, x0=1, y0=2, x1=30, y1=40)
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=verify_box").json()

    # when it is answered yes: savepoint, plan mode; the task (by uid or token), profile and item,
    # locked; the vote and the box's count (one update, no read of the box); its checks with their
    # workers' accuracies; its state, the image's stage, record, task and lease; release
    with django_assert_num_queries(7):
        _answer(client, task, [{"item": task["items"][0]["id"], "answer": "yes"}])

    # then the box is accepted and the image goes to the coverage check
    box.refresh_from_db()
    assert (box.yes_votes, box.no_votes, box.state) == (1, 0, "accepted")
    assert Candidate.objects.get(pk=image.pk).box_state == "coverage"


@pytest.mark.parametrize(("said", "statements", "stage"), [("no", 6, "draw"), ("yes", 10, "done")])
def test_answering_a_coverage_check_costs_pinned_statements(
    category, django_assert_num_queries, said, statements, stage
):
    # given a leased coverage check of an image with one accepted box
    [image] = candidate_pool(category, 1, seed=930)
    Candidate.objects.update(state="accepted", box_state="coverage")
    _, bob = worker_client("bob")
    Box.objects.create(candidate=image, worker=bob, x0=1, y0=2, x1=30, y1=40, state="accepted")
    client, _ = worker_client("ann")
    task = client.get("/api/tasks/next/?kind=coverage").json()

    # when it is answered: savepoint, plan mode; the task (by uid or token), profile and item,
    # locked; the vote; the image's stage (no: back to drawing; yes: settled), record, task and
    # lease; (yes: the objects fused: boxes, old objects, drawers' accuracies, new objects); release
    with django_assert_num_queries(statements):
        _answer(client, task, [{"item": task["items"][0]["id"], "answer": said}])

    # then the image is drawn again, or done with its one object
    assert Candidate.objects.get(pk=image.pk).box_state == stage
    assert image.object_boxes.count() == (1 if said == "yes" else 0)


def _lease_explained(plans: list[dict]):
    """An execute wrapper that also runs each verify lease statement under EXPLAIN ANALYZE (in
    a savepoint rolled back) and appends its plan to ``plans``, to see which parts ran."""

    def explained(execute, sql, params, many, context):
        if sql.lstrip().startswith("WITH free AS MATERIALIZED"):
            cursor = context["cursor"]
            cursor.execute("SAVEPOINT explained")
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plans.append(cursor.fetchone()[0][0]["Plan"])
            cursor.execute("ROLLBACK TO SAVEPOINT explained")
        return execute(sql, params, many, context)

    return explained


def _cte_nodes(plan: dict, name: str) -> list[dict]:
    """Every plan node that scans (``scans``) or computes the CTE ``name``."""
    found = []
    if plan.get("CTE Name") == name or plan.get("Subplan Name") == f"CTE {name}":
        found.append(plan)
    for child in plan.get("Plans", []):
        found += _cte_nodes(child, name)
    return found


def _cte_loops(plan: dict, name: str) -> list[int]:
    """Actual loops of the nodes that scan or compute the CTE ``name``."""
    return [node["Actual Loops"] for node in _cte_nodes(plan, name)]


def _cte_rows(plan: dict, name: str) -> list[int]:
    """Actual rows of the nodes that compute the CTE ``name``."""
    return [node["Actual Rows"] for node in _cte_nodes(plan, name) if "Subplan Name" in node]


@pytest.mark.parametrize("gold_rate", [0.0, 1.0])
def test_a_verify_lease_does_the_same_work_whether_or_not_it_serves_a_control(
    category, settings, gold_rate
):
    # given items needing one vote next to curated gold; each lease statement is also run
    # under EXPLAIN ANALYZE (in a savepoint rolled back) to see which of its parts ran
    settings.CROWDNET_GOLD_RATE = gold_rate
    pool = _gold_pool(category, 12, gold=3, seed=500)
    Candidate.objects.filter(pk__in=[c.pk for c in pool[3:]]).update(votes_needed=1)
    client, _ = worker_client("ann")
    plans = []

    # when a task is leased, a real item (rate 0) or a control in its place (rate 1)
    with connection.execute_wrapper(_lease_explained(plans)):
        response = client.get("/api/tasks/next/?kind=verify")

    # then the control's lookup ran either way, and the picked item's row was written either
    # way (the lease fills it): a real item does not come back faster than a control
    # (bench/control_detection.py's timing AUC); only an item actually leased got the
    # full-until hint
    assert response.status_code == 200
    served = TaskItem.objects.get(uid=response.json()["items"][0]["id"])
    assert served.is_gold is (gold_rate == 1.0)
    [plan] = plans
    assert min(_cte_loops(plan, "control")) == 1
    assert min(_cte_loops(plan, "nearby")) == 1
    assert _cte_rows(plan, "hinted") == [1]
    hinted = list(Candidate.objects.filter(full_until__isnull=False).values_list("id", flat=True))
    assert hinted == ([] if served.is_gold else [served.candidate_id])


def test_a_verify_lease_ranks_a_bounded_sample_of_its_categorys_gold_for_the_control(
    category, settings
):
    # given a category with 100 curated gold items before its open pool items
    settings.CROWDNET_GOLD_RATE = 1.0
    _gold_pool(category, 110, gold=100, seed=520)
    client, _ = worker_client("ann")
    plans: list[dict] = []

    # when a task is leased (the lease explained as above)
    with connection.execute_wrapper(_lease_explained(plans)):
        response = client.get("/api/tasks/next/?kind=verify")

    # then a gold item was served, chosen among at most a window of the decided items before
    # the pool item and a window of the gold from a random point: never the whole gold
    assert response.status_code == 200
    assert TaskItem.objects.get(uid=response.json()["items"][0]["id"]).is_gold
    [plan] = plans
    assert 0 < max(_cte_rows(plan, "ranked")) <= 2 * CONTROL_WINDOW
    # and the walk over the decided items before the pool item (all 100 gold) stopped at the
    # window: it reads the index in order, it does not read them all and sort
    walks = [
        scan["Actual Rows"]
        for scan, _ in _scans(plan)
        if scan.get("Index Name") == "candidate_decided" and scan["Actual Loops"] == 1
    ]
    assert walks and max(walks) == CONTROL_WINDOW, walks


def test_a_next_without_a_kind_reads_the_state_and_kinds_in_one_statement(
    category, django_assert_num_queries
):
    # given images waiting for drawing and an open pool (verify), nothing in the kinds before
    # drawing, and a worker with a profile
    images = candidate_pool(category, 3, seed=1100)
    Candidate.objects.filter(pk=images[0].pk).update(state="accepted", box_state="draw")
    client, ann = worker_client("ann")
    worker_profile(ann)

    # when the worker asks for any task: savepoint, plan mode, profile and kinds with work (one
    # plain statement), the drawing's pick, its lease, release; the empty kinds cost nothing
    with django_assert_num_queries(6) as captured:
        response = client.get("/api/tasks/next/")

    # then he gets the drawing, the first kind in order with work
    assert response.status_code == 200
    assert response.json()["kind"] == "draw"
    state = captured.captured_queries[2]["sql"]
    assert state.startswith("SELECT p.paused, p.pause_reason,")
    assert state.count("labeling_microtask") == 1


def test_a_next_without_a_kind_falls_to_verify_with_the_verify_lease(
    category, django_assert_num_queries
):
    # given only an open pool, and a worker with a profile
    candidate_pool(category, 3, seed=1120)
    client, ann = worker_client("ann")
    worker_profile(ann)

    # when the worker asks for any task: savepoint, plan mode, profile and kinds with work, the
    # verify pick, its lease, release
    with django_assert_num_queries(6):
        response = client.get("/api/tasks/next/")

    # then he gets a verify task
    assert response.status_code == 200
    assert response.json()["kind"] == "verify"


def test_a_next_without_a_kind_holding_the_most_open_tasks_returns_the_oldest(
    category, settings, django_assert_num_queries
):
    # given a worker holding the most open tasks he may
    settings.CROWDNET_MAX_OPEN_TASKS = 2
    candidate_pool(category, 4, seed=1140)
    client, _ = worker_client("ann")
    first = client.get("/api/tasks/next/").json()
    client.get("/api/tasks/next/")

    # when he asks for any task: savepoint, plan mode, state, the oldest open task, release, and its
    # body (items, candidates, category)
    with django_assert_num_queries(8):
        response = client.get("/api/tasks/next/")

    # then he gets his oldest open task again
    assert response.json()["id"] == first["id"]


def test_a_next_and_an_answer_take_the_engines_plan_mode_first(category, settings):
    # given a pool and a worker, and the default engine plan mode (generic plans)
    assert settings.CROWDNET_DB_ENGINE_PLAN_CACHE_MODE == "force_generic_plan"
    candidate_pool(category, 3, seed=1160)
    client, _ = worker_client("ann")

    # when he asks for a task and answers it
    with CaptureQueriesContext(connection) as asked:
        task = client.get("/api/tasks/next/?kind=verify").json()
    with CaptureQueriesContext(connection) as answered:
        _answer(client, task, [{"item": task["items"][0]["id"], "answer": "yes"}])

    # then each transaction sets the mode first (after its savepoint), for itself only
    for captured in (asked, answered):
        assert (
            captured.captured_queries[1]["sql"] == "SET LOCAL plan_cache_mode = force_generic_plan"
        )


def test_without_an_engine_plan_mode_of_its_own_a_next_sets_nothing(
    category, settings, django_assert_num_queries
):
    # given the engine's mode the same as the connections' (the setting is then None)
    settings.CROWDNET_DB_ENGINE_PLAN_CACHE_MODE = None
    candidate_pool(category, 3, seed=1170)
    client, ann = worker_client("ann")
    worker_profile(ann)

    # when he asks for a task: savepoint, profile, open tasks and pick, lease, release
    with django_assert_num_queries(4) as captured:
        response = client.get("/api/tasks/next/?kind=verify")

    # then no plan mode was set
    assert response.status_code == 200
    assert not any("plan_cache_mode" in q["sql"] for q in captured.captured_queries)


def _scans(plan: dict, join_filter: str = "") -> list[tuple[dict, str]]:
    """Every node of a JSON plan that scans a table, with the condition it reads under: its
    own index condition and filter, and its nested loop's join filter (checked per outer
    row); a hash or merge join's condition does not count (its inner side is read whole)."""
    found = []
    if "Relation Name" in plan and plan["Node Type"].endswith("Scan"):
        found.append((plan, plan.get("Index Cond", "") + plan.get("Filter", "") + join_filter))
    inherited = plan.get("Join Filter", "") if plan["Node Type"] == "Nested Loop" else ""
    for child in plan.get("Plans", []):
        outer = child.get("Parent Relationship") == "Outer"
        found += _scans(child, "" if outer else inherited)
    return found


def _generic_plans(plans: list[dict], prefixes: tuple[str, ...]):
    """An execute wrapper that appends to ``plans`` the plan of each statement starting with
    one of ``prefixes``, run first under a generic plan (one made without the call's values,
    as the engine's transactions use) and rolled back, then runs the statement."""

    def explained(execute, sql, params, many, context):
        if sql.lstrip().startswith(prefixes):
            cursor = context["cursor"]
            cursor.execute("SAVEPOINT explained")
            names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
            named = sql
            for number, name in enumerate(names, start=1):
                named = named.replace(f"%({name})s", f"${number}")
            cursor.execute("PREPARE explained_statement AS " + named)
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            raw = connection.connection
            values = ", ".join(Literal(params[name]).as_string(raw) for name in names)
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained_statement({values})")
            plans.append(cursor.fetchone()[0][0]["Plan"])
            cursor.execute("DEALLOCATE explained_statement")
            cursor.execute("ROLLBACK TO SAVEPOINT explained")
        return execute(sql, params, many, context)

    return explained


def _history(worker, category, kind: str, candidates: list[Candidate]) -> None:
    """The worker's earlier yes votes on ``candidates``, in one answered task of ``kind``."""
    worker_profile(worker)
    task = MicroTask.objects.create(
        worker=worker, kind=kind, category=category, expires_at=timezone.now()
    )
    Vote.objects.bulk_create(
        Vote(
            worker=worker,
            task=task,
            kind=kind,
            question="label",
            candidate=c,
            answer="yes",
            seconds=2.0,
        )
        for c in candidates
    )


def test_the_verify_pick_and_lease_probe_votes_and_leases_per_candidate_in_generic_plans(
    category, settings
):
    # given a worker with a long history (120 votes) and a crowd's open leases, the tables
    # analysed, and every statement of the next explained under a generic plan (one made
    # without the call's values, as the engine's transactions use)
    pool = _gold_pool(category, 160, gold=12, seed=1180)
    client, ann = worker_client("ann")
    _history(ann, category, "verify", pool[20:140])
    for name in ("bob", "cy", "dee"):
        client_other, _ = worker_client(name)
        for _ in range(2):
            assert client_other.get("/api/tasks/next/?kind=verify").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    plans: list[dict] = []

    # when he asks for a task
    with connection.execute_wrapper(_generic_plans(plans, ("WITH free AS", "WITH state AS"))):
        response = client.get("/api/tasks/next/?kind=verify")

    # then both statements ran, and they read votes, leases and gold rows only for one
    # candidate (per walked row) or one category, and task items only of one of the worker's
    # tasks (his held items, read once): never all of the worker's votes, all open leases or
    # all gold (on tables this small a probe may still be a sequential scan)
    assert response.status_code == 200
    assert len(plans) == 2
    _assert_probes(plans)


def test_the_verify_pick_passes_fully_leased_items_without_probing_them_in_a_generic_plan(
    category, settings
):
    # given a pool whose ten top items each had their one vote leased by another worker (so
    # their hints were noted), the tables analysed, and the next explained under a generic
    # plan
    settings.CROWDNET_GOLD_RATE = 0.0
    pool = candidate_pool(category, 40, seed=1200)
    Candidate.objects.update(votes_needed=1)
    for n in range(10):
        client_other, _ = worker_client(f"other{n}")
        assert client_other.get("/api/tasks/next/?kind=verify").status_code == 200
    assert Candidate.objects.filter(full_until__isnull=False).count() == 10
    client, ann = worker_client("ann")
    worker_profile(ann)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    plans: list[dict] = []

    # when ann asks for a task
    with connection.execute_wrapper(_generic_plans(plans, ("WITH state AS",))):
        response = client.get("/api/tasks/next/?kind=verify")

    # then the pick walked the pool index in serving order and probed the leases of the three
    # rows it locked only: the ten leased ones were passed by on their hints (in a plan made
    # for tables this small the worker's vote may be probed first, for every row)
    assert response.status_code == 200
    assert TaskItem.objects.get(uid=response.json()["items"][0]["id"]).candidate_id == pool[10].pk
    [plan] = plans
    scans = _scans(plan)
    assert [s["Index Name"] for s, _ in scans if s["Relation Name"] == "labeling_candidate"] == [
        "candidate_pool"
    ]
    lease_probes = [
        s["Actual Loops"]
        for s, condition in scans
        if s["Relation Name"] == "labeling_taskitem" and "candidate_id = c.id" in condition
    ]
    assert lease_probes == [3]


def _assert_probes(plans: list[dict]) -> None:
    probes = [
        (scan, condition)
        for plan in plans
        for scan, condition in _scans(plan)
        if scan["Relation Name"] in ("labeling_vote", "labeling_taskitem", "labeling_goldanswer")
    ]
    assert probes
    for scan, condition in probes:
        if scan.get("Index Name") == "gold_category" and scan["Actual Rows"] <= 1:
            continue  # a step of the skip scan of the categories with gold: one entry
        per_row = ("candidate_id = ", "category_id = ", "candidate_id >= ", "candidate_id < ")
        per_task = scan["Relation Name"] == "labeling_taskitem" and re.search(
            r"\btask_id = t(_\d+)?\.id", condition
        )
        assert per_task or any(part in condition for part in per_row), (
            scan["Relation Name"],
            scan["Node Type"],
            condition,
        )


def test_the_grid_pick_reads_gold_from_its_random_start_and_held_items_once_in_generic_plans(
    category, settings
):
    # given a category with 40 curated gold items in a pool of 160, a worker who answered 20
    # of that gold and 60 pool items, other workers holding grids, the tables analysed, and
    # the grid's pick and lease explained under a generic plan
    settings.CROWDNET_GOLD_RATE = 0.5
    pool = _gold_pool(category, 160, gold=40, seed=1190)
    client, ann = worker_client("ann")
    _history(ann, category, "grid", pool[:20] + pool[40:100])
    for name in ("bob", "cy"):
        client_other, _ = worker_client(name)
        assert client_other.get("/api/tasks/next/?kind=grid").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    plans: list[dict] = []

    # when he asks for a grid
    prefixes = ("WITH RECURSIVE gold_categories", "WITH free AS")
    with connection.execute_wrapper(_generic_plans(plans, prefixes)):
        response = client.get("/api/tasks/next/?kind=grid")

    # then it is a grid of 9 with 4 gold cells he has not seen, and both statements read
    # votes, leases and gold per candidate, category or gold range (the gold cells from the
    # drawn start on, under the index condition), and task items only of his own tasks
    assert response.status_code == 200
    items = TaskItem.objects.filter(task__uid=response.json()["id"])
    assert items.count() == 9
    gold = set(items.filter(is_gold=True).values_list("candidate_id", flat=True))
    assert len(gold) == 4
    assert not gold & {c.pk for c in pool[:20]}
    assert len(plans) == 2
    _assert_probes(plans)
    ranges = [
        scan.get("Index Cond", "")
        for scan, condition in _scans(plans[0])
        if scan["Relation Name"] == "labeling_goldanswer" and "start" in condition
    ]
    assert ranges
    assert all("start" in condition for condition in ranges), ranges
    # and the lease reads each gold cell's answer by key and the category's gold once (for
    # the examples, which walk past the category's gold: it is the most confident)
    gold_reads = [
        scan["Actual Loops"]
        for scan, _ in _scans(plans[1])
        if scan["Relation Name"] == "labeling_goldanswer"
    ]
    assert sum(gold_reads) == len(gold) + 1, gold_reads

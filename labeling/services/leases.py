"""The verify lease on PostgreSQL in two statements: pick-and-lock, then recount-and-lease.

1. ``PICK`` walks the pool index (``candidate_pool``) in serving order and locks up to a few
   rows with ``FOR UPDATE SKIP LOCKED``. Each walked row costs one probe of its open leases
   (``task_item_lease``) and one of the worker's own vote (``vote_once_per_question``); no
   anti-join over all votes. The worker's own open leases are read once (HELD).
2. ``LEASE`` runs in a fresh statement, so in READ COMMITTED it sees every lease committed
   after the pick's snapshot: it counts the locked rows' open leases again and checks again
   that the worker neither voted on nor holds them (STATE_PICK waits for his profile's lock
   with its snapshot already taken, so a request of his that held the lock and leased
   meanwhile is invisible to its pick), keeps the first that still needs a vote, looks up
   the control item that may stand in for it (issue 12: the same statement whether or not
   the control is served), inserts the MicroTask and its TaskItem and returns all the
   task's body needs (image, category, examples).

Both steps read an item's room through ROOM in the pick (the full-until hint first) and
OPEN_LEASES in the recount; the lease that fills an item notes the hint.

Nobody else can add a lease to a locked row until we commit, so no item gets more leases
than the votes it still needs. SQLite takes labeling.services.microtasks' ORM path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from labeling.models import Candidate, Category, Image, MicroTask, TaskItem, TaskKind, User

OPEN_LEASES = """(SELECT count(*) FROM (SELECT 1 FROM labeling_taskitem i
    WHERE i.candidate_id = {c}.id AND i.box_id IS NULL AND i.leased_until > %(now)s
    LIMIT {c}.votes_needed) open_lease)"""
"""Candidate ``{c}``'s open leases, counted up to its votes_needed (compared as votes_cast +
this < votes_needed, the cap changes no answer). The LIMIT makes a plan made without ``now``
read the lease index a row at a time: without it such a plan took a third of the item's task
items to be open and bitmap-scanned them all, on every row a pick walks."""


def unestimated(condition: str) -> str:
    """``condition`` as a test no statistics describe: a CASE tested for NULL, which the
    planner takes to pass 99.5 % of rows whatever the data or the call's values. For tests a
    plan must not be built around: their own estimates moved the pick's generic plan, or made
    a walk that stops at a few rows read and sort them all (docs/benchmarks.md)."""
    return f"CASE WHEN {condition} THEN 1 END IS NOT NULL"


FIRST_LEASE_END = """(SELECT min(i.leased_until) FROM labeling_taskitem i
      WHERE i.candidate_id = {c}.id AND i.box_id IS NULL AND i.leased_until > %(now)s)"""
"""When the first of candidate ``{c}``'s open label leases ends (NULL: none open). With the
new lease's expiry (LEAST), what the lease that fills an item notes as its full-until hint."""

ROOM = (
    unestimated("({c}.full_until > %(now)s AND {c}.full_needed = {c}.votes_needed) IS NOT TRUE")
    + """
  AND {c}.votes_cast + """
    + OPEN_LEASES
    + " < {c}.votes_needed"
)
"""Whether a pick may take candidate ``{c}``: its votes cast and open leases fall short of
the votes it needs. The full-until hint (``Candidate.full_until``, noted by the verify lease
that fills the item, void once votes_needed differs from ``full_needed``) answers "no" from
the row the pick reads anyway, so a pick walks past items whose votes are all leased without
probing their leases or the worker's votes: with many workers holding tasks those are most
of what the top of the pool holds. The hint is ``unestimated`` and costs no subplan, so it is
checked first while the pick's plan stays the one it had without it (a plain ``OR`` on the
columns was estimated from their statistics and moved a generic plan). A hint only ever skips:
LEASE recounts the leases of what was picked, so a stale one can't over-assign; it goes
stale only when a lease ends without a counted vote, and ``leases_release`` voids it where
that happens early."""

HELD = """ARRAY(SELECT h.candidate_id FROM labeling_microtask t,
        LATERAL (SELECT h.candidate_id FROM labeling_taskitem h
          WHERE h.task_id = t.id AND h.leased_until > %(now)s{box} OFFSET 0) h
        WHERE t.worker_id = %(worker)s AND t.status = 'leased' AND t.expires_at > %(now)s)"""
"""The candidates of the worker's open leases ({box}: more conditions on the item), read
once per statement from his open tasks (``micro_task_open``, then each task's few items, by
task: OFFSET 0 keeps that a probe per task where a plan may hash every open lease):
an item's lease is a copy of its task's expiry and ends (leased_until set to the moment)
when the task is answered or released. Probed per walked row instead, each probe read every
lease entry of the candidate in ``task_item_lease``, answered ones included until a vacuum,
and cost more than the rest of a walked row (docs/benchmarks.md, "Grids: what the pick and
the lease read per call")."""

NOT_GOLD = """{e}.id NOT IN (SELECT xg.candidate_id FROM labeling_goldanswer xg
        WHERE xg.category_id = {category})"""
"""Candidate ``{e}`` of category ``{category}`` (an expression that does not read ``{e}``) is
no curated gold: the category's gold read once into a hash (``gold_category``). A task's
examples walk the category's accepted items from the most confident down, and curated gold
(confidence 1) comes first: probed row by row, every lease in a category read all its gold
(250 rows, three quarters of a grid lease's buffers on crowd_load's seed)."""

NEW_TO_WORKER = (
    """NOT EXISTS (SELECT 1 FROM labeling_vote v
        WHERE v.worker_id = %(worker)s AND v.candidate_id = {c}.id AND v.question = 'label'
          AND v.box_id IS NULL OFFSET 0)
    AND {c}.id <> ALL("""  # noqa: S608 (constant fragments; values are bound)
    + HELD.format(box="")  # no braces left for the callers' format(c=...)
    + ")"
)
"""Whether the worker has not voted on candidate ``{c}`` and holds no open lease of it: one
index probe of his votes per walked row (OFFSET 0 keeps it a per-row probe: as an anti-join,
a plan made without the call's values, a generic plan, read all the worker's votes on every
call, growing with his history) and a look in HELD."""

PICK = f"""
SELECT c.id FROM labeling_candidate c
WHERE c.state = 'open' AND c.votes_cast < c.votes_needed
  AND {ROOM.format(c="c")}
  AND {NEW_TO_WORKER.format(c="c")}
  AND EXISTS (SELECT 1 FROM labeling_category g
    WHERE g.id = c.category_id AND g.archived_at IS NULL)
  {{gate}}
ORDER BY c.priority DESC, c.votes_cast DESC, c.id
LIMIT %(limit)s
FOR UPDATE OF c SKIP LOCKED
"""  # noqa: S608 (every fragment is a constant; values are bound)

STATE_PICK = f"""
WITH state AS MATERIALIZED (
  SELECT p.paused, p.pause_reason,
    (SELECT count(*) FROM labeling_microtask t JOIN labeling_category g ON g.id = t.category_id
     WHERE t.worker_id = %(worker)s AND t.status = 'leased' AND t.expires_at > %(now)s
       AND t.kind = 'verify' AND g.archived_at IS NULL) AS open_tasks
  FROM labeling_workerprofile p
  WHERE p.user_id = %(worker)s
  FOR UPDATE OF p
),
picked AS (
  {
    PICK.format(
        gate="AND EXISTS (SELECT 1 FROM state "
        "WHERE NOT state.paused AND state.open_tasks < %(max_open)s)"
    )
}
)
SELECT state.paused, state.pause_reason, state.open_tasks, ARRAY(SELECT id FROM picked)
FROM state
"""  # noqa: S608 (every fragment is a constant; values are bound)
"""The worker's state and the pick in one statement: his profile row-locked, whether he is
paused and how many verify tasks he holds open, and, only when he may take another, up to
``limit`` pool rows locked as PICK locks them."""

CONTROL_OF = """{c}.category_id = (SELECT lk.category_id FROM l lk)
    AND {c}.state IN ('accepted', 'rejected')"""
"""Candidate ``{c}`` is a decided item of the real item's category (``l``, read as an init
plan: a join with it would hide the index order of a walk behind a sort)."""

KNOWN_ANSWER = """({c}.confidence >= %(control_confidence)s
         OR EXISTS (SELECT 1 FROM labeling_goldanswer kg WHERE kg.candidate_id = {c}.id OFFSET 0))
    AND {c}.id NOT IN (SELECT id FROM top_examples)"""
"""Decided candidate ``{c}``'s answer is known (curated gold, or decided at
CROWDNET_CONTROL_CONFIDENCE) and it is not one of the task's examples."""

KNOWN = CONTROL_OF + "\n    AND " + KNOWN_ANSWER
"""A candidate of the real item's category whose answer is known, not one of the task's
examples: one that may be its control."""

DECIDED = CONTROL_OF + "\n    AND " + unestimated(KNOWN_ANSWER + "\n    AND " + NEW_TO_WORKER)
"""A decided candidate ``{c}`` next to the real item that may be its control (KNOWN) and is
new to the worker, for a walk in id order that stops at ``window`` rows. The tests are
``unestimated``: with their own estimates the planner expected a handful to pass, so it read
every decided item of the category on that side (bitmap scan and sort, a vote probe each)
instead of walking the index to the first ``window``, and the walk grew with the category's
decisions."""

GOLD_CONTROL = (
    """EXISTS (SELECT 1 FROM labeling_candidate gc
        WHERE gc.id = g.candidate_id AND """  # noqa: S608 (constant fragments; values are bound)
    + KNOWN.format(c="gc")
    + "\n        AND "
    + NEW_TO_WORKER.format(c="gc")
    + " OFFSET 0)"
)
"""Gold row ``g`` of the real item's category may be its control: known (KNOWN) and new to
the worker, probed per gold row the walk reads. The walk starts at a random point of the
category's gold and stops at ``window`` rows, so a lease reads a bounded sample of the
category's gold however large it is (it read all of it before: 7,400 buffers a lease in a
category with 500 gold)."""

LEASE = f"""
WITH free AS MATERIALIZED (
  SELECT c.id, c.category_id, c.image_id, c.votes_cast + o.leases + 1 >= c.votes_needed AS fills
  FROM labeling_candidate c, LATERAL (SELECT {OPEN_LEASES.format(c="c")} AS leases OFFSET 0) o
  WHERE c.id = ANY(%(locked)s) AND c.votes_cast + o.leases < c.votes_needed
    AND {NEW_TO_WORKER.format(c="c")}
  ORDER BY c.priority DESC, c.votes_cast DESC, c.id
  LIMIT 1
),
l AS MATERIALIZED (
  SELECT f.id, f.category_id, im.width, im.height
  FROM free f JOIN labeling_image im ON im.id = f.image_id
),
top_examples AS MATERIALIZED (
  SELECT e.id FROM l, labeling_candidate e
  WHERE e.category_id = l.category_id AND e.state = 'accepted'
    AND {NOT_GOLD.format(e="e", category="(SELECT k.category_id FROM l k)")}
  ORDER BY e.confidence DESC, e.id
  LIMIT %(examples)s
),
nearby AS MATERIALIZED (
  (SELECT b.id FROM labeling_candidate b
   WHERE b.id < (SELECT lb.id FROM l lb) AND {DECIDED.format(c="b")}
   ORDER BY b.id DESC LIMIT %(window)s)
  UNION
  (SELECT a.id FROM labeling_candidate a
   WHERE a.id > (SELECT la.id FROM l la) AND {DECIDED.format(c="a")}
   ORDER BY a.id LIMIT %(window)s)
  UNION
  (SELECT s.id FROM l, LATERAL (
     SELECT lo + floor(random() * (hi - lo + 1))::bigint AS start
     FROM (SELECT min(u.candidate_id) AS lo, max(u.candidate_id) AS hi
       FROM labeling_goldanswer u WHERE u.category_id = l.category_id) bounds) span,
   LATERAL (
     (SELECT g.candidate_id AS id FROM labeling_goldanswer g
      WHERE g.category_id = l.category_id AND g.candidate_id >= span.start AND {GOLD_CONTROL}
      ORDER BY g.candidate_id LIMIT %(window)s)
     UNION ALL
     (SELECT g.candidate_id FROM labeling_goldanswer g
      WHERE g.category_id = l.category_id AND g.candidate_id < span.start AND {GOLD_CONTROL}
      ORDER BY g.candidate_id LIMIT %(window)s)
     LIMIT %(window)s) s)
),
-- each of nearby's few rows is looked up by key (OFFSET 0: never a join that reads whole
-- tables, which a plan made without the call's values chose)
ranked AS MATERIALIZED (
  SELECT d.id, d.category_id, d.image_id, COALESCE(d.gold, d.state = 'accepted') AS answer
  FROM l, nearby n, LATERAL (
    SELECT dc.id, dc.category_id, dc.image_id, dc.state, di.width, di.height,
      (SELECT g.answer FROM labeling_goldanswer g WHERE g.candidate_id = dc.id) AS gold
    FROM labeling_candidate dc JOIN labeling_image di ON di.id = dc.image_id
    WHERE dc.id = n.id OFFSET 0) d
  ORDER BY (abs(d.width - l.width) + abs(d.height - l.height)) / %(size_step)s,
    (d.gold IS NOT NULL) DESC, random()
),
-- every row of nearby is new to the worker (both walks probed that): the first ranked is it
control AS MATERIALIZED (
  SELECT r.id, r.category_id, r.image_id, r.answer FROM ranked r LIMIT 1
),
chosen AS MATERIALIZED (
  SELECT id, category_id, image_id, false AS is_gold, NULL::boolean AS answer FROM free
  WHERE NOT %(serve_control)s OR NOT EXISTS (SELECT 1 FROM control)
  UNION ALL
  SELECT id, category_id, image_id, true, answer FROM control WHERE %(serve_control)s
),
task AS (
  INSERT INTO labeling_microtask
    (uid, worker_id, kind, category_id, status, issued_at, expires_at, answered_at, client_token,
     response)
  SELECT %(task_uid)s, %(worker)s, 'verify', category_id, 'leased', %(now)s, %(expires)s, NULL,
    NULL, NULL
  FROM chosen
  RETURNING id
),
item AS (
  INSERT INTO labeling_taskitem
    (uid, task_id, position, candidate_id, box_id, is_gold, control_answer, leased_until)
  SELECT %(item_uid)s, task.id, 0, chosen.id, NULL, chosen.is_gold, chosen.answer, %(expires)s
  FROM task, chosen
  RETURNING id
),
-- the lease that takes a real item's last missing vote notes when the item's first lease
-- ends (ours is not visible here: LEAST adds it), for the picks to pass it by until then.
-- A control served in its place leaves the hint as it was but writes the row all the same
-- (locked by the pick: nobody waits): the same work whether or not a control is served
hinted AS (
  UPDATE labeling_candidate h
  SET full_until = CASE WHEN chosen.is_gold THEN h.full_until
      ELSE LEAST(%(expires)s, o.first_end) END,
    full_needed = CASE WHEN chosen.is_gold THEN h.full_needed ELSE h.votes_needed END
  FROM free f, chosen, LATERAL (SELECT {FIRST_LEASE_END.format(c="f")} AS first_end) o
  WHERE h.id = f.id AND f.fills
  RETURNING 1
)
SELECT task.id, item.id, chosen.id, chosen.image_id, chosen.is_gold, chosen.answer,
  chosen.category_id, cat.name, cat.definition, im.uid, im.width, im.height,
  ARRAY(
    SELECT ei.uid FROM labeling_candidate e JOIN labeling_image ei ON ei.id = e.image_id
    WHERE e.category_id = chosen.category_id AND e.state = 'accepted'
      AND e.image_id <> chosen.image_id
      AND {NOT_GOLD.format(e="e", category="(SELECT k.category_id FROM chosen k)")}
    ORDER BY e.confidence DESC, e.id
    LIMIT %(examples)s
  ),
  -- the control's lookup runs on every lease: with serve_control bound false the planner
  -- would otherwise prune it, and a real item would come back faster than a control
  EXISTS (SELECT 1 FROM control)
FROM task, item, chosen
  JOIN labeling_category cat ON cat.id = chosen.category_id
  JOIN labeling_image im ON im.id = chosen.image_id
"""  # noqa: S608 (every fragment is a constant; values are bound)


PICKS = 3
"""Picks a verify lease makes before it answers that there is no work: a pick can come back
with rows other workers leased in the meantime (the lease's recount sees them), and under
load all of them may be (crowd_load at 100 workers: 4-14 nexts in 30 s answered 204 with
thousands of items open)."""


@dataclass(frozen=True)
class Served:
    """A just-leased task's items (with candidate, image and category loaded) and its example
    images' uids, best first: what the task's body shows, read in the lease itself."""

    items: list[TaskItem]
    example_image_uids: list[uuid.UUID]


@dataclass(frozen=True)
class VerifyLease:
    """What LEASE wrote and returned: enough to build the task and its body without a read."""

    task_id: int
    task_uid: uuid.UUID
    item_id: int
    item_uid: uuid.UUID
    candidate_id: int
    image_id: int
    is_gold: bool
    control_answer: bool | None
    category_id: int
    category_name: str
    category_definition: str
    image_uid: uuid.UUID
    width: int
    height: int
    examples: list[uuid.UUID]


def leases_release(worker_id: int, now: datetime) -> None:
    """End the worker's open leases at ``now`` without a vote (a pause sends his tasks back
    to the pool) and void the full-until hint (ROOM) of the label items they held, so the
    picks see the room at once rather than when the first of those leases would have ended.
    SKIP LOCKED: a row another transaction holds keeps its hint, which lasts no longer than
    the lease it was noted from, and no pause waits on, or deadlocks with, a pick or an
    answer."""
    items = TaskItem.objects.filter(task__worker_id=worker_id, task__status=MicroTask.Status.LEASED)
    held = list(
        items.filter(leased_until__gt=now, box__isnull=True).values_list("candidate_id", flat=True)
    )
    items.update(leased_until=now)
    if not held:
        return
    hinted = (
        Candidate.objects.filter(pk__in=held, full_until__gt=now)
        .order_by("pk")
        .select_for_update(skip_locked=True)
        .values("pk")
    )
    Candidate.objects.filter(pk__in=hinted).update(full_until=None, full_needed=None)


def leased_task(
    *,
    pk: int,
    uid: uuid.UUID,
    worker: User,
    kind: str,
    category: Category,
    now: datetime,
    expires: datetime,
) -> MicroTask:
    """The MicroTask a SQL lease has just written, built from what it returned (no read)."""
    return MicroTask(
        pk=pk,
        uid=uid,
        worker=worker,
        kind=kind,
        category=category,
        status=MicroTask.Status.LEASED,
        issued_at=now,
        expires_at=expires,
    )


def verify_pick(*, worker_id: int, now: datetime, limit: int) -> list[int]:
    """Lock up to ``limit`` pool candidates the worker may take, in serving order (ids)."""
    with connection.cursor() as cursor:
        cursor.execute(PICK.format(gate=""), {"worker": worker_id, "now": now, "limit": limit})
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class WorkerState:
    """What STATE_PICK read and locked: the worker's pause, his open verify tasks, and the
    pool rows picked for him (none while he is paused or holds enough open tasks)."""

    paused: bool
    pause_reason: str
    open_tasks: int
    locked: list[int]


def verify_state_pick(
    *, worker_id: int, now: datetime, max_open: int, limit: int
) -> WorkerState | None:
    """Lock the worker's profile and, if he may take another task, up to ``limit`` pool
    candidates for him (STATE_PICK); None when he has no profile yet."""
    values = {"worker": worker_id, "now": now, "max_open": max_open, "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute(STATE_PICK, values)
        row = cursor.fetchone()
    return None if row is None else WorkerState(row[0], row[1], row[2], list(row[3]))


def verify_lease(
    *,
    worker_id: int,
    locked: list[int],
    now: datetime,
    expires: datetime,
    serve_control: bool,
    params: dict[str, Any],
) -> VerifyLease | None:
    """Lease the first of the ``locked`` candidates that still needs a vote, or the control
    item that stands in for it when ``serve_control``; writes a MicroTask and a TaskItem.
    ``params`` carries control_confidence, window, size_step and examples."""
    task_uid, item_uid = uuid.uuid4(), uuid.uuid4()
    values = {
        **params,
        "worker": worker_id,
        "locked": locked,
        "now": now,
        "expires": expires,
        "serve_control": serve_control,
        "task_uid": task_uid,
        "item_uid": item_uid,
    }
    with connection.cursor() as cursor:
        cursor.execute(LEASE, values)
        row = cursor.fetchone()
    if row is None:
        return None
    return VerifyLease(
        task_id=row[0],
        task_uid=task_uid,
        item_id=row[1],
        item_uid=item_uid,
        candidate_id=row[2],
        image_id=row[3],
        is_gold=row[4],
        control_answer=row[5],
        category_id=row[6],
        category_name=row[7],
        category_definition=row[8],
        image_uid=row[9],
        width=row[10],
        height=row[11],
        examples=list(row[12]),
    )


def verify_task_lease(
    *,
    worker: User,
    now: datetime,
    serve_control: bool,
    params: dict[str, Any],
    locked: list[int] | None = None,
) -> MicroTask | None:
    """Pick, lock and lease a verify task for ``worker`` (see the module docstring), or lease
    one of the candidates ``locked`` already picked (verify_state_pick); writes a MicroTask
    and its TaskItem. The task comes back with ``served``: its body needs no read."""
    expires = now + timedelta(seconds=settings.CROWDNET_LEASE_SECONDS)
    for _ in range(PICKS):
        if locked is None:
            locked = verify_pick(worker_id=worker.pk, now=now, limit=3)
        if not locked:
            return None
        lease = verify_lease(
            worker_id=worker.pk,
            locked=locked,
            now=now,
            expires=expires,
            serve_control=serve_control,
            params=params,
        )
        if lease is not None:
            break
        # Every row picked was leased by transactions that committed after the pick's
        # snapshot (their leases were invisible to it, their row locks already gone): a
        # fresh pick sees those leases and walks on (the rows stay locked by us, harmlessly).
        locked = None
    else:
        return None
    category = Category(
        pk=lease.category_id, name=lease.category_name, definition=lease.category_definition
    )
    task = leased_task(
        pk=lease.task_id,
        uid=lease.task_uid,
        worker=worker,
        kind=TaskKind.VERIFY,
        category=category,
        now=now,
        expires=expires,
    )
    image = Image(pk=lease.image_id, uid=lease.image_uid, width=lease.width, height=lease.height)
    candidate = Candidate(pk=lease.candidate_id, image=image, category=category)
    item = TaskItem(
        pk=lease.item_id,
        uid=lease.item_uid,
        task=task,
        position=0,
        candidate=candidate,
        box=None,
        is_gold=lease.is_gold,
        control_answer=lease.control_answer,
        leased_until=expires,
    )
    task.served = Served(items=[item], example_image_uids=lease.examples[: params["examples"]])
    return task

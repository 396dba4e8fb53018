"""The grid lease on PostgreSQL in two statements: pick-and-lock, then recount-and-lease.

1. ``PICK`` lists the live categories that have control items (curated gold) by a skip scan
   of ``gold_category`` (one index probe per such category, however much gold each holds),
   keeps those with a control item the worker has not seen (each category's gold read in
   order up to the first unseen one), then walks the pool in serving order
   (``candidate_pool``) to the worker's top item in one of them. It draws the grid's gold cells
   from that category's gold: the first unseen ones from a random point of its candidate ids
   on, wrapping round (a range of ``gold_category``, each row with a probe of the worker's
   vote, and a look in the worker's held candidates), and locks the category's next pool rows
   in serving order (``candidate_grid_pool``), from the top row on (the rows before it were
   just walked), with ``FOR UPDATE SKIP LOCKED``. Each walked pool row costs one probe of its
   open leases and one of the worker's own vote; his open leases are read once (HELD).
2. ``LEASE`` runs in a fresh statement, so in READ COMMITTED it sees every lease committed
   after the pick's snapshot: it counts the locked rows' open leases again, keeps the first
   that still need a vote, shuffles them with the gold cells, inserts the MicroTask and its
   TaskItems and returns all the task's body needs (images, category, examples).

Every grid carries its gold cells, so a control costs the same statements as a real cell
(issue 12). Nobody else can add a lease to a locked row until we commit, so no item gets
more leases than the votes it still needs; the worker's profile is locked around both, so
they cannot be given an item twice. SQLite, and a lease inside a campaign's scope, take
labeling.services.microtasks' ORM path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from labeling.models import Candidate, Category, Image, MicroTask, TaskItem, TaskKind, User
from labeling.services.leases import (
    FIRST_LEASE_END,
    HELD,
    NEW_TO_WORKER,
    NOT_GOLD,
    OPEN_LEASES,
    ROOM,
    Served,
    leased_task,
)

POOL_ROW = (
    """{c}.state = 'open' AND {c}.votes_cast < {c}.votes_needed
  AND """
    + ROOM
    + """
  AND """
    + NEW_TO_WORKER
)

UNSEEN_GOLD = (
    """NOT (SELECT EXISTS (SELECT 1 FROM labeling_vote v
        WHERE v.worker_id = %(worker)s AND v.candidate_id = {c}.candidate_id
          AND v.question = 'label' AND v.box_id IS NULL))
    AND {c}.candidate_id <> ALL("""  # noqa: S608 (constant fragments; values are bound)
    + HELD.format(box=" AND h.box_id IS NULL")  # no braces left for format(c=...)
    + ")"
)
"""A gold row's candidate neither answered nor held by the worker (as NEW_TO_WORKER): an
index probe of his votes per gold row read (``vote_once_per_question``) and a look in his
held candidates (HELD, read once). As a scalar subquery the probe can't become a join over
the worker's votes, and the planner takes it to pass half the rows (a ``(SELECT ...) IS NULL``
it takes to pass 0.5 %, so it costed the whole gold table per category, and past
jit_optimize_above_cost PostgreSQL spent most of a second compiling the statement)."""

PICK = f"""
WITH RECURSIVE gold_categories AS (
  (SELECT g.category_id AS id FROM labeling_goldanswer g ORDER BY g.category_id LIMIT 1)
  UNION ALL
  SELECT (SELECT g.category_id FROM labeling_goldanswer g WHERE g.category_id > k.id
    ORDER BY g.category_id LIMIT 1)
  FROM gold_categories k WHERE k.id IS NOT NULL
),
eligible AS MATERIALIZED (
  SELECT k.id FROM gold_categories k JOIN labeling_category g ON g.id = k.id
  WHERE g.archived_at IS NULL
    AND (SELECT true FROM labeling_goldanswer u
      WHERE u.category_id = k.id AND {UNSEEN_GOLD.format(c="u")}
      ORDER BY u.candidate_id LIMIT 1)
),
top AS MATERIALIZED (
  SELECT c.category_id, c.priority, c.votes_cast, c.id FROM labeling_candidate c
  WHERE c.category_id = ANY(ARRAY(SELECT id FROM eligible)) AND {POOL_ROW.format(c="c")}
  ORDER BY c.priority DESC, c.votes_cast DESC, c.id
  LIMIT 1
),
span AS MATERIALIZED (
  SELECT top.category_id, lo + floor(random() * (hi - lo + 1))::bigint AS start FROM top,
    LATERAL (SELECT min(u.candidate_id) AS lo, max(u.candidate_id) AS hi
      FROM labeling_goldanswer u WHERE u.category_id = top.category_id) bounds
),
gold AS MATERIALIZED (
  (SELECT later.id FROM span CROSS JOIN LATERAL (
     SELECT u.candidate_id AS id FROM labeling_goldanswer u
     WHERE u.category_id = span.category_id AND u.candidate_id >= span.start
       AND {UNSEEN_GOLD.format(c="u")}
     ORDER BY u.candidate_id LIMIT %(gold)s) later)
  UNION ALL
  (SELECT earlier.id FROM span CROSS JOIN LATERAL (
     SELECT u.candidate_id AS id FROM labeling_goldanswer u
     WHERE u.category_id = span.category_id AND u.candidate_id < span.start
       AND {UNSEEN_GOLD.format(c="u")}
     ORDER BY u.candidate_id LIMIT %(gold)s) earlier)
  LIMIT %(gold)s
),
locked AS MATERIALIZED (
  SELECT c.id FROM labeling_candidate c
  WHERE c.category_id = (SELECT category_id FROM top)
    AND c.priority <= (SELECT priority FROM top)
    AND (-c.priority, -c.votes_cast, c.id)
      >= (SELECT -top.priority, -top.votes_cast, top.id FROM top)
    AND {POOL_ROW.format(c="c")}
  ORDER BY c.priority DESC, c.votes_cast DESC, c.id
  LIMIT (%(size)s - (SELECT count(*) FROM gold)) * 2
  FOR UPDATE OF c SKIP LOCKED
)
SELECT top.category_id, ARRAY(SELECT id FROM locked), ARRAY(SELECT id FROM gold) FROM top
"""  # noqa: S608 (every fragment is a constant; values are bound)

LEASE = f"""
WITH free AS MATERIALIZED (
  SELECT c.id, c.image_id, false AS is_gold, NULL::boolean AS answer,
    c.votes_cast + o.leases + 1 >= c.votes_needed AS fills
  FROM labeling_candidate c, LATERAL (SELECT {OPEN_LEASES.format(c="c")} AS leases OFFSET 0) o
  WHERE c.id = ANY(%(locked)s) AND c.votes_cast + o.leases < c.votes_needed
  ORDER BY c.priority DESC, c.votes_cast DESC, c.id
  LIMIT %(pool)s
),
placed AS MATERIALIZED (
  SELECT cells.*, (row_number() OVER (ORDER BY random()) - 1)::smallint AS position FROM (
    SELECT f.id, f.image_id, f.is_gold, f.answer FROM free f
    UNION ALL
    SELECT d.id, d.image_id, true, g.answer FROM labeling_candidate d,
      LATERAL (SELECT g.answer FROM labeling_goldanswer g WHERE g.candidate_id = d.id
        OFFSET 0) g  -- by key: a generic plan hashed the whole gold table
    WHERE d.id = ANY(%(gold)s) AND EXISTS (SELECT 1 FROM free)
  ) cells
),
task AS (
  INSERT INTO labeling_microtask
    (uid, worker_id, kind, category_id, status, issued_at, expires_at, answered_at, client_token,
     response)
  SELECT %(task_uid)s, %(worker)s, 'grid', %(category)s, 'leased', %(now)s, %(expires)s, NULL,
    NULL, NULL
  WHERE EXISTS (SELECT 1 FROM free)
  RETURNING id
),
item AS (
  INSERT INTO labeling_taskitem
    (uid, task_id, position, candidate_id, box_id, is_gold, control_answer, leased_until)
  SELECT gen_random_uuid(), task.id, p.position, p.id, NULL, p.is_gold, p.answer, %(expires)s
  FROM task, placed p
  RETURNING id, uid, position, candidate_id
),
-- the cells whose last missing vote this grid takes get the verify lease's hint (leases.ROOM)
hinted AS (
  UPDATE labeling_candidate h
  SET full_until = LEAST(%(expires)s, {FIRST_LEASE_END.format(c="h")}),
    full_needed = h.votes_needed
  FROM free f
  WHERE h.id = f.id AND f.fills AND EXISTS (SELECT 1 FROM task)
  RETURNING 1
)
SELECT task.id, item.id, item.uid, item.position, p.id, p.image_id, p.is_gold, p.answer,
  im.uid, im.width, im.height, cat.name, cat.definition,
  ARRAY(
    SELECT ei.uid FROM labeling_candidate e JOIN labeling_image ei ON ei.id = e.image_id
    WHERE e.category_id = %(category)s AND e.state = 'accepted'
      AND e.image_id <> ALL(ARRAY(SELECT image_id FROM placed))
      AND {NOT_GOLD.format(e="e", category="%(category)s")}
    ORDER BY e.confidence DESC, e.id
    LIMIT %(examples)s
  )
FROM task, item
  JOIN placed p ON p.id = item.candidate_id
  JOIN labeling_image im ON im.id = p.image_id
  JOIN labeling_category cat ON cat.id = %(category)s
ORDER BY item.position
"""  # noqa: S608 (every fragment is a constant; values are bound)


@dataclass(frozen=True)
class GridPick:
    """What PICK locked and drew: the grid's category, its pool rows (locked, in serving
    order) and its gold cells (not locked: a control item is shared by every worker)."""

    category_id: int
    locked: list[int]
    gold: list[int]


def grid_pick(*, worker_id: int, now: datetime, size: int, gold: int) -> GridPick | None:
    """The grid's category, gold cells and locked pool rows for the worker, or None when no
    category with an unseen control item has pool work for them."""
    with connection.cursor() as cursor:
        cursor.execute(PICK, {"worker": worker_id, "now": now, "size": size, "gold": gold})
        row = cursor.fetchone()
    if row is None:
        return None
    return GridPick(category_id=row[0], locked=list(row[1]), gold=list(row[2]))


def grid_task_lease(*, worker: User, now: datetime, examples: int) -> MicroTask | None:
    """Pick, lock and lease a grid for ``worker`` (see the module docstring): CROWDNET_GRID_SIZE
    cells, of which max(1, round(size x CROWDNET_GOLD_RATE)) gold; writes a MicroTask and its
    TaskItems. The task comes back with ``served``: its body needs no read."""
    size = settings.CROWDNET_GRID_SIZE
    gold = max(1, round(size * settings.CROWDNET_GOLD_RATE))
    pick = grid_pick(worker_id=worker.pk, now=now, size=size, gold=gold)
    if pick is None or not pick.gold or not pick.locked:
        return None  # no grid, or its pool rows taken by others: the worker asks again
    expires = now + timedelta(seconds=settings.CROWDNET_LEASE_SECONDS)
    task_uid = uuid.uuid4()
    values = {
        "worker": worker.pk,
        "locked": pick.locked,
        "gold": pick.gold,
        "pool": size - len(pick.gold),
        "category": pick.category_id,
        "now": now,
        "expires": expires,
        "task_uid": task_uid,
        "examples": examples,
    }
    with connection.cursor() as cursor:
        cursor.execute(LEASE, values)
        rows = cursor.fetchall()
    if not rows:
        return None
    category = Category(pk=pick.category_id, name=rows[0][11], definition=rows[0][12])
    task = leased_task(
        pk=rows[0][0],
        uid=task_uid,
        worker=worker,
        kind=TaskKind.GRID,
        category=category,
        now=now,
        expires=expires,
    )
    items = [
        TaskItem(
            pk=item_id,
            uid=item_uid,
            task=task,
            position=position,
            candidate=Candidate(
                pk=candidate_id,
                image=Image(pk=image_id, uid=image_uid, width=width, height=height),
                category=category,
            ),
            box=None,
            is_gold=is_gold,
            control_answer=answer,
            leased_until=expires,
        )
        for (
            _,
            item_id,
            item_uid,
            position,
            candidate_id,
            image_id,
            is_gold,
            answer,
            image_uid,
            width,
            height,
            *_,
        ) in rows
    ]
    task.served = Served(items=items, example_image_uids=list(rows[0][13])[:examples])
    return task

"""The box tasks' leases on PostgreSQL: a drawing, a box check or a coverage check in two
statements, pick-and-lock then recount-and-lease, as the verify and grid leases do.

1. The pick. A drawing or coverage check (``PICK``) walks ``candidate_box_stage`` in serving
   order (priority, then id) and locks the first candidate of the stage with ``FOR UPDATE
   SKIP LOCKED`` that has no open lease and that the worker has not answered (nor, for a
   coverage check, drawn on). A box check (``BOX_PICK``) walks ``box_proposed`` in id order and
   locks up to 3 proposed boxes still short of CROWDNET_BOX_VERIFY_VOTES with their open
   leases, that someone else drew, that the worker has not voted on nor holds, in a live
   category. Each walked row costs index probes (its open leases, the worker's vote and
   leases), never a join over all votes.
2. ``LEASE``, a fresh statement (in READ COMMITTED it sees every lease committed after the
   pick's snapshot), counts the locked rows' open leases again and keeps the first that still
   may be leased, inserts the MicroTask and its TaskItem and returns all the task's body needs
   (image, category, the box, a coverage check's accepted boxes, examples).

Nobody else can add a lease to a locked row until we commit, so no image and no box gets
more leases than it may have. SQLite, and a campaign's scoped lease, take
labeling.services.microtasks' ORM path.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from labeling.models import Box, Candidate, Category, Image, MicroTask, TaskItem, TaskKind, User
from labeling.services.leases import NOT_GOLD, Served, leased_task

PICK = """
SELECT c.id FROM labeling_candidate c
  JOIN labeling_category g ON g.id = c.category_id AND g.archived_at IS NULL
WHERE c.box_state = %(stage)s
  AND NOT EXISTS (SELECT 1 FROM labeling_vote v
    WHERE v.worker_id = %(worker)s AND v.candidate_id = c.id AND v.question = %(stage)s
      AND v.box_id IS NULL OFFSET 0)
  AND NOT EXISTS (SELECT 1 FROM labeling_taskitem i
    WHERE i.candidate_id = c.id AND i.box_id IS NULL AND i.leased_until > %(now)s OFFSET 0)
  AND (NOT %(coverage)s OR NOT EXISTS (SELECT 1 FROM labeling_box b
    WHERE b.candidate_id = c.id AND b.worker_id = %(worker)s OFFSET 0))
ORDER BY c.priority DESC, c.id
LIMIT 1
FOR UPDATE OF c SKIP LOCKED
"""

BOX_LEASES = """(SELECT count(*) FROM labeling_taskitem i
    WHERE i.box_id = {b}.id AND i.leased_until > %(now)s)"""

BOX_PICK = f"""
SELECT b.id FROM labeling_box b
WHERE b.state = 'proposed' AND b.yes_votes + b.no_votes < %(votes)s
  AND b.worker_id IS DISTINCT FROM %(worker)s
  AND b.yes_votes + b.no_votes + {BOX_LEASES.format(b="b")} < %(votes)s
  AND NOT (SELECT EXISTS (SELECT 1 FROM labeling_vote v
    WHERE v.worker_id = %(worker)s AND v.box_id = b.id))
  AND NOT (SELECT EXISTS (SELECT 1 FROM labeling_taskitem h
    WHERE h.box_id = b.id AND h.leased_until > %(now)s
      AND (SELECT t.worker_id FROM labeling_microtask t WHERE t.id = h.task_id) = %(worker)s))
  AND EXISTS (SELECT 1 FROM labeling_candidate c JOIN labeling_category g
    ON g.id = c.category_id WHERE c.id = b.candidate_id AND g.archived_at IS NULL)
ORDER BY b.id
LIMIT 3
FOR UPDATE OF b SKIP LOCKED
"""  # noqa: S608 (every fragment is a constant; values are bound)

FREE_IMAGE = """
  SELECT NULL::bigint AS box_id, c.id AS candidate_id, NULL::float8 AS x0, NULL::float8 AS y0,
    NULL::float8 AS x1, NULL::float8 AS y1
  FROM labeling_candidate c
  WHERE c.id = ANY(%(locked)s) AND NOT EXISTS (SELECT 1 FROM labeling_taskitem i
    WHERE i.candidate_id = c.id AND i.box_id IS NULL AND i.leased_until > %(now)s OFFSET 0)
  LIMIT 1
"""
"""A drawing's or coverage check's locked image, if it still has no open lease."""

FREE_BOX = f"""
  SELECT b.id AS box_id, b.candidate_id, b.x0, b.y0, b.x1, b.y1 FROM labeling_box b
  WHERE b.id = ANY(%(locked)s) AND b.yes_votes + b.no_votes + {BOX_LEASES.format(b="b")}
    < %(votes)s
  ORDER BY b.id
  LIMIT 1
"""  # noqa: S608 (a constant)
"""The first locked box still short of its votes with its open leases."""

LEASE = """
WITH free AS MATERIALIZED ({free}),
chosen AS MATERIALIZED (
  SELECT f.*, c.category_id, c.image_id FROM free f JOIN labeling_candidate c
    ON c.id = f.candidate_id
),
task AS (
  INSERT INTO labeling_microtask
    (uid, worker_id, kind, category_id, status, issued_at, expires_at, answered_at, client_token,
     response)
  SELECT %(task_uid)s, %(worker)s, %(kind)s, category_id, 'leased', %(now)s, %(expires)s, NULL,
    NULL, NULL
  FROM chosen
  RETURNING id
),
item AS (
  INSERT INTO labeling_taskitem
    (uid, task_id, position, candidate_id, box_id, is_gold, control_answer, leased_until)
  SELECT %(item_uid)s, task.id, 0, chosen.candidate_id, chosen.box_id, false, NULL, %(expires)s
  FROM task, chosen
  RETURNING id
)
SELECT task.id, item.id, chosen.box_id, chosen.x0, chosen.y0, chosen.x1, chosen.y1,
  chosen.candidate_id, chosen.image_id, chosen.category_id, cat.name, cat.definition, im.uid,
  im.width, im.height,
  ARRAY(
    SELECT ei.uid FROM labeling_candidate e JOIN labeling_image ei ON ei.id = e.image_id
    WHERE e.category_id = chosen.category_id AND e.state = 'accepted'
      AND e.image_id <> chosen.image_id
      AND {not_gold}
    ORDER BY e.confidence DESC, e.id
    LIMIT %(examples)s
  ),
  ARRAY(
    SELECT ARRAY[a.id, a.x0, a.y0, a.x1, a.y1] FROM labeling_box a
    WHERE %(coverage)s AND a.candidate_id = chosen.candidate_id AND a.state = 'accepted'
    ORDER BY a.id
  )
FROM task, item, chosen
  JOIN labeling_category cat ON cat.id = chosen.category_id
  JOIN labeling_image im ON im.id = chosen.image_id
"""
"""``free`` is FREE_IMAGE or FREE_BOX; a coverage check also returns the image's accepted
boxes, [id, x0, y0, x1, y1] each, which its body shows."""

_NOT_GOLD = NOT_GOLD.format(e="e", category="(SELECT k.category_id FROM chosen k)")
IMAGE_LEASE = LEASE.format(free=FREE_IMAGE, not_gold=_NOT_GOLD)
BOX_LEASE = LEASE.format(free=FREE_BOX, not_gold=_NOT_GOLD)


def box_stage_pick(*, worker_id: int, now: datetime, stage: str) -> int | None:
    """Lock the worker's next candidate waiting in box ``stage`` (draw or coverage); its id."""
    values = {"worker": worker_id, "now": now, "stage": stage, "coverage": stage == "coverage"}
    with connection.cursor() as cursor:
        cursor.execute(PICK, values)
        row = cursor.fetchone()
    return None if row is None else row[0]


def box_pick(*, worker_id: int, now: datetime) -> list[int]:
    """Lock up to 3 proposed boxes the worker may check, in id order (ids)."""
    values = {"worker": worker_id, "now": now, "votes": settings.CROWDNET_BOX_VERIFY_VOTES}
    with connection.cursor() as cursor:
        cursor.execute(BOX_PICK, values)
        return [row[0] for row in cursor.fetchall()]


def _served_task(
    row: tuple, *, worker: User, kind: str, task_uid: uuid.UUID, item_uid: uuid.UUID, **times
) -> MicroTask:
    """The task LEASE wrote, with ``served`` built from what it returned (no read)."""
    (task_id, item_id, box_id, x0, y0, x1, y1, candidate_id, image_id, category_id) = row[:10]
    name, definition, image_uid, width, height, examples, accepted = row[10:]
    category = Category(pk=category_id, name=name, definition=definition)
    task = leased_task(
        pk=task_id, uid=task_uid, worker=worker, kind=kind, category=category, **times
    )
    image = Image(pk=image_id, uid=image_uid, width=width, height=height)
    candidate = Candidate(pk=candidate_id, image=image, category=category)
    if kind == TaskKind.COVERAGE:  # what candidate.boxes.all() gives the body: no read
        boxes = Box.objects.none()
        boxes._result_cache = [  # type: ignore[attr-defined]
            Box(pk=int(b[0]), candidate=candidate, x0=b[1], y0=b[2], x1=b[3], y1=b[4])
            for b in accepted
        ]
        candidate._prefetched_objects_cache = {"boxes": boxes}  # type: ignore[attr-defined]
    box = None
    if box_id is not None:
        box = Box(pk=box_id, candidate=candidate, x0=x0, y0=y0, x1=x1, y1=y1)
    item = TaskItem(
        pk=item_id,
        uid=item_uid,
        task=task,
        position=0,
        candidate=candidate,
        box=box,
        is_gold=False,
        control_answer=None,
        leased_until=times["expires"],
    )
    task.served = Served(items=[item], example_image_uids=list(examples))
    return task


def box_task_lease(*, worker: User, kind: str, now: datetime, examples: int) -> MicroTask | None:
    """Pick, lock and lease a drawing, box check or coverage check for ``worker`` (see the
    module docstring); writes a MicroTask and its TaskItem. The task comes back with
    ``served``: its body needs no read."""
    if kind == TaskKind.VERIFY_BOX:
        locked = box_pick(worker_id=worker.pk, now=now)
        statement = BOX_LEASE
    else:
        picked = box_stage_pick(worker_id=worker.pk, now=now, stage=kind)
        locked = [] if picked is None else [picked]
        statement = IMAGE_LEASE
    if not locked:
        return None
    expires = now + timedelta(seconds=settings.CROWDNET_LEASE_SECONDS)
    task_uid, item_uid = uuid.uuid4(), uuid.uuid4()
    values = {
        "worker": worker.pk,
        "locked": locked,
        "now": now,
        "expires": expires,
        "kind": kind,
        "votes": settings.CROWDNET_BOX_VERIFY_VOTES,
        "coverage": kind == TaskKind.COVERAGE,
        "examples": examples,
        "task_uid": task_uid,
        "item_uid": item_uid,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        row = cursor.fetchone()
    if row is None:
        return None
    return _served_task(
        row, worker=worker, kind=kind, task_uid=task_uid, item_uid=item_uid, now=now,
        expires=expires,
    )  # fmt: skip

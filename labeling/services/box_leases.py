"""The pick of a drawing or coverage task on PostgreSQL: one statement over the box-stage index.

It walks ``candidate_box_stage`` in serving order (priority, then id) and locks the first
candidate of the stage with ``FOR UPDATE SKIP LOCKED`` that has no open lease and that the
worker has not answered (nor, for a coverage check, drawn on), paying for each walked row an
index probe of its leases and of the worker's vote. The lease itself is the ORM's
(labeling.services.microtasks). SQLite, and a campaign's scoped lease, take the ORM pick.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from labeling.models import Candidate, Category

PICK = """
SELECT c.id, g.id, g.name, g.definition FROM labeling_candidate c
  JOIN labeling_category g ON g.id = c.category_id AND g.archived_at IS NULL
WHERE c.box_state = %(stage)s
  AND NOT EXISTS (SELECT 1 FROM labeling_vote v
    WHERE v.worker_id = %(worker)s AND v.candidate_id = c.id AND v.question = %(question)s
      AND v.box_id IS NULL)
  AND NOT EXISTS (SELECT 1 FROM labeling_taskitem i
    WHERE i.candidate_id = c.id AND i.box_id IS NULL AND i.leased_until > %(now)s)
  AND (NOT %(coverage)s OR NOT EXISTS (SELECT 1 FROM labeling_box b
    WHERE b.candidate_id = c.id AND b.worker_id = %(worker)s))
ORDER BY c.priority DESC, c.id
LIMIT 1
FOR UPDATE OF c SKIP LOCKED
"""


def box_stage_pick(*, worker_id: int, now: datetime, stage: str, question: str) -> Candidate | None:
    """Lock the worker's next candidate waiting in box ``stage`` (draw or coverage), with its
    category loaded, or None."""
    values = {
        "worker": worker_id,
        "now": now,
        "stage": stage,
        "question": question,
        "coverage": stage == "coverage",
    }
    with connection.cursor() as cursor:
        cursor.execute(PICK, values)
        row = cursor.fetchone()
    if row is None:
        return None
    category = Category(pk=row[1], name=row[2], definition=row[3])
    return Candidate(pk=row[0], category=category)

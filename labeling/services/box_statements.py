"""The box chain's answers (a drawing, a box check, a coverage check) on PostgreSQL, after
answer_statements' LOAD (the task and the worker's profile locked, read with the item):

1. ``BOX_VOTE`` inserts the vote and, when it counts, the boxes drawn (a drawing) or the
   check's count on its box (a box check, which locks the box), returning the box's counts.
2. ``BOX_CHECKS`` (a counted box check that has its CROWDNET_BOX_VERIFY_VOTES): in a fresh
   statement, after the box's lock, the box's counted checks with their checkers' accuracy
   fields.
3. ``BOX_FINISH``: the box's verdict, the image's box stage (``STAGE``, which sees the
   vote and boxes of statement 1), the worker's record, the task answered and its lease
   released; it returns the stage, so a coverage check that closes the chain fuses the
   image's objects (labeling.services.consensus.objects_fuse).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from labeling.services.answer_statements import FINISH_WRITES, Answered

STAGE = """
UPDATE labeling_candidate SET box_state = CASE
  WHEN %(redraw)s THEN 'draw'
  WHEN EXISTS (SELECT 1 FROM labeling_box b WHERE b.candidate_id = %(candidate)s
    AND CASE WHEN b.id = %(judged_box)s THEN %(judged_state)s ELSE b.state END = 'proposed')
    THEN 'verify'
  WHEN EXISTS (SELECT 1 FROM labeling_box b WHERE b.candidate_id = %(candidate)s
    AND CASE WHEN b.id = %(judged_box)s THEN %(judged_state)s ELSE b.state END = 'accepted')
    THEN CASE WHEN %(covered)s THEN 'done' ELSE 'coverage' END
  WHEN t.none >= %(needed)s AND t.none = t.drawers THEN 'absent'
  WHEN t.drawers >= %(cap)s THEN 'review'
  ELSE 'draw' END
FROM (SELECT count(DISTINCT v.worker_id) AS drawers,
        count(DISTINCT CASE WHEN v.answer = 'no' THEN v.worker_id END) AS none
      FROM labeling_vote v
      WHERE v.candidate_id = %(candidate)s AND v.question = 'draw' AND v.counted) t
WHERE labeling_candidate.id = %(candidate)s AND %(settle)s
RETURNING labeling_candidate.box_state
"""
"""An image's box stage once none of its boxes awaits a check, settled and written in one
statement: the coverage check when a box was accepted (done, when ``covered``: a coverage
check said yes); "absent" when CROWDNET_BOX_NONE_VOTES distinct workers found none present
and nobody drew one (one worker's "none" contradicts the crowd's label); the review queue once
CROWDNET_BOX_DRAW_CAP workers answered without settling it; else another worker draws. A
coverage check's "no" (``redraw``) sends it back to drawing. ``judged_box`` is read as in
``judged_state`` (the box a check has just decided in the same statement; NULL: none)."""


def stage_params(
    candidate_id: int,
    *,
    settle: bool = True,
    covered: bool = False,
    redraw: bool = False,
    judged: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """STAGE's values for the candidate's image."""
    needed = settings.CROWDNET_BOX_NONE_VOTES
    return {
        "candidate": candidate_id,
        "settle": settle,
        "covered": covered,
        "redraw": redraw,
        "judged_box": None if judged is None else judged[0],
        "judged_state": None if judged is None else judged[1],
        "needed": needed,
        "cap": max(needed, settings.CROWDNET_BOX_DRAW_CAP),
    }


BOX_VOTE = """
WITH cast_vote AS (
  INSERT INTO labeling_vote (worker_id, task_id, kind, question, candidate_id, box_id, answer,
    is_gold, correct, counted, peer_p_yes, seconds, created_at)
  VALUES (%(worker)s, %(task)s, %(kind)s, %(question)s, %(candidate)s, %(box)s, %(answer)s,
    %(is_gold)s, %(correct)s, %(counted)s, NULL, %(seconds)s, %(created_at)s)
  RETURNING 1
),
drawn AS (
  INSERT INTO labeling_box (uid, candidate_id, worker_id, x0, y0, x1, y1, state, yes_votes,
    no_votes, created_at)
  SELECT d.uid, %(candidate)s, %(worker)s, d.x0, d.y0, d.x1, d.y1, 'proposed', 0, 0,
    %(created_at)s
  FROM unnest(%(uids)s::uuid[], %(x0)s::float8[], %(y0)s::float8[], %(x1)s::float8[],
    %(y1)s::float8[]) WITH ORDINALITY AS d(uid, x0, y0, x1, y1, n)
  ORDER BY d.n
  RETURNING 1
),
checked AS (
  UPDATE labeling_box SET yes_votes = yes_votes + %(yes)s, no_votes = no_votes + %(no)s
  WHERE id = %(box)s AND %(check)s
  RETURNING yes_votes, no_votes
)
SELECT (SELECT yes_votes FROM checked), (SELECT no_votes FROM checked),
  (SELECT count(*) FROM cast_vote), (SELECT count(*) FROM drawn)
"""


@dataclass(frozen=True)
class BoxVote:
    """One box-chain answer's vote as BOX_VOTE writes it; the ``boxes`` drawn and a check's
    count on its box are written only when the answer ``moves`` the chain (its task's control,
    if any, answered right)."""

    kind: str
    question: str
    candidate_id: int
    box_id: int | None
    answer: str
    is_gold: bool
    correct: bool | None
    counted: bool
    moves: bool
    boxes: tuple[tuple[float, float, float, float], ...]


def box_vote_write(
    *, worker_id: int, task_id: int, vote: BoxVote, seconds: float, created_at: datetime
) -> tuple[int, int] | None:
    """Insert the vote, and when it moves the chain the boxes drawn or the check's count on
    its box; the checked box's (yes_votes, no_votes) after it, None when no box was checked."""
    drawn = vote.boxes if vote.moves else ()
    check = vote.moves and vote.box_id is not None
    with connection.cursor() as cursor:
        cursor.execute(
            BOX_VOTE,
            {
                "worker": worker_id,
                "task": task_id,
                "kind": vote.kind,
                "question": vote.question,
                "candidate": vote.candidate_id,
                "box": vote.box_id,
                "answer": vote.answer,
                "is_gold": vote.is_gold,
                "correct": vote.correct,
                "counted": vote.counted,
                "seconds": seconds,
                "created_at": created_at,
                "uids": [uuid.uuid4() for _ in drawn],
                **{
                    name: [box[k] for box in drawn]
                    for k, name in enumerate(("x0", "y0", "x1", "y1"))
                },
                "check": check,
                "yes": int(vote.answer == "yes"),
                "no": int(vote.answer == "no"),
            },
        )
        yes_votes, no_votes, _, _ = cursor.fetchone()
    return None if yes_votes is None else (yes_votes, no_votes)


BOX_CHECKS = """
SELECT v.worker_id, v.answer, p.em_accuracy, COALESCE(p.gold_seen, 0),
  COALESCE(p.gold_correct, 0)
FROM labeling_vote v LEFT JOIN labeling_workerprofile p ON p.user_id = v.worker_id
WHERE v.box_id = %(box)s AND v.question = 'box' AND v.counted AND v.answer IN ('yes', 'no')
ORDER BY v.id
"""
"""consensus.box_accepted's reads in one statement: the box's counted yes/no checks and each
checker's accuracy fields (a checker without a profile as a newcomer)."""


def box_checks_read(box_id: int) -> list[tuple[int, str, float | None, int, int]]:
    """The box's counted checks as (worker_id, answer, em_accuracy, gold_seen, gold_correct);
    run it after the box's row lock is held."""
    with connection.cursor() as cursor:
        cursor.execute(BOX_CHECKS, {"box": box_id})
        return list(cursor.fetchall())


BOX_FINISH = f"""
WITH judged AS (
  UPDATE labeling_box SET state = %(judged_state)s WHERE id = %(judged_box)s RETURNING 1
),
decided AS ({STAGE}),{FINISH_WRITES}
SELECT (SELECT box_state FROM decided), (SELECT count(*) FROM answered)
"""  # noqa: S608 (constants; values are bound)


def box_answer_finish(
    *,
    stage: dict[str, Any],
    answered: Answered,
) -> str | None:
    """Write a box-chain answer's outcome in one statement: the judged box's state and the
    image's stage (``stage``: stage_params), then ``answered`` (no peer credits); the stage
    written, None when it was not settled."""
    params = {**stage, **answered.params()}
    with connection.cursor() as cursor:
        cursor.execute(BOX_FINISH, params)
        stage = cursor.fetchone()[0]
    return None if stage is None else str(stage)

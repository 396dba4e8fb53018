"""The answer path's statements on PostgreSQL: the task and the worker's profile locked and
read with the task's items in one statement (every kind), and a verify answer written in three
more:

1. ``LOAD`` locks the worker's task (by uid, and any task by the client_token, for replays)
   and his profile, and reads the task's items with what checking and scoring them needs
   (image size, gold answer).
2. ``VOTE`` inserts the vote and adds it to the candidate's tally (the UPDATE takes the
   candidate's row lock), returning the counters consensus decides on.
3. ``CONSENSUS`` runs in a fresh statement, so in READ COMMITTED it sees every vote committed
   before we took the lock: the candidate's counted yes/no votes with their voters' coin
   fields, and the category's capped decided counts (its learnt prior, and the one-answer
   gate's figures).
4. ``FINISH`` writes the decision, the peer credits of the votes it decided on, the worker's
   record, the answered task and the released lease, in one statement.

The same four statements run for a control item and a real one. SQLite takes the ORM path in
labeling.services.answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from django.db import connection

from labeling.models import MicroTask, WorkerProfile
from labeling.services.category_priors import (
    DECIDED_PRIOR_SAMPLE,
    counts_remember,
    counts_remembered,
)
from labeling.services.worker_coins import COIN_FIELDS

TASK_FIELDS = [f.attname for f in MicroTask._meta.concrete_fields]


@cache
def _profile_fields() -> list[str]:
    return [f.attname for f in WorkerProfile._meta.concrete_fields]


@cache
def _load_sql() -> str:
    task = ", ".join(f"t.{name}" for name in TASK_FIELDS)
    profile = ", ".join(f"p.{name}" for name in _profile_fields())
    return f"""
SELECT {task}, i.id, i.uid, i.candidate_id, i.box_id, i.is_gold, i.control_answer,
  c.category_id, im.width, im.height, g.answer, {profile}
FROM labeling_microtask t
  JOIN labeling_workerprofile p ON p.user_id = t.worker_id
  JOIN labeling_taskitem i ON i.task_id = t.id
  JOIN labeling_candidate c ON c.id = i.candidate_id
  JOIN labeling_image im ON im.id = c.image_id
  LEFT JOIN labeling_goldanswer g ON g.candidate_id = c.id
WHERE t.worker_id = %(worker)s AND (t.uid = %(uid)s OR t.client_token = %(token)s)
ORDER BY t.id, i.position
FOR UPDATE OF t, p
"""  # noqa: S608 (column names from the models; values are bound)


@dataclass(frozen=True)
class LoadedItem:
    """One item of a locked task, with what checking and scoring its answer needs."""

    id: int
    uid: UUID
    candidate_id: int
    box_id: int | None
    is_gold: bool
    control_answer: bool | None
    category_id: int
    width: int
    height: int
    gold_answer: bool | None  # the candidate's curated gold answer, if any

    def known_answer(self) -> bool | None:
        """A control item's known answer (items leased before control_answer existed fall
        back to the gold row); None for an item that is not gold."""
        if not self.is_gold:
            return None
        return self.gold_answer if self.control_answer is None else self.control_answer


@dataclass(frozen=True)
class Loaded:
    """The worker's tasks that LOAD matched (by uid or token), each with its items, and his
    profile, all row-locked."""

    tasks: list[tuple[MicroTask, list[LoadedItem]]]
    profile: WorkerProfile


def task_load(*, worker_id: int, task_uid: UUID | str, client_token: str) -> Loaded | None:
    """Lock and read the worker's task ``task_uid``, any task of his with ``client_token``,
    and his profile; None when neither task nor profile row is there (the ORM path then says
    which)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _load_sql(), {"worker": worker_id, "uid": task_uid, "token": client_token or None}
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    n_task = len(TASK_FIELDS)
    tasks: dict[int, tuple[MicroTask, list[LoadedItem]]] = {}
    for row in rows:
        if row[0] not in tasks:
            values = list(row[:n_task])
            response = values[TASK_FIELDS.index("response")]
            if isinstance(response, str):
                values[TASK_FIELDS.index("response")] = json.loads(response)
            tasks[row[0]] = (MicroTask.from_db("default", TASK_FIELDS, values), [])
        tasks[row[0]][1].append(LoadedItem(*row[n_task : n_task + 10]))
    profile_values = list(rows[0][n_task + 10 :])
    confusion = _profile_fields().index("confusion")
    if isinstance(profile_values[confusion], str):
        profile_values[confusion] = json.loads(profile_values[confusion])
    profile = WorkerProfile.from_db("default", _profile_fields(), profile_values)
    return Loaded(tasks=list(tasks.values()), profile=profile)


VOTE = """
WITH vote AS (
  INSERT INTO labeling_vote (worker_id, task_id, kind, question, candidate_id, box_id, answer,
    is_gold, correct, counted, peer_p_yes, seconds, created_at)
  VALUES (%(worker)s, %(task)s, 'verify', 'label', %(candidate)s, NULL, %(answer)s,
    %(is_gold)s, %(correct)s, %(counted)s, NULL, %(seconds)s, %(created_at)s)
  RETURNING id
),
tally AS (
  UPDATE labeling_candidate
  SET yes_votes = yes_votes + %(yes)s, no_votes = no_votes + %(no)s,
    unsure_votes = unsure_votes + %(unsure)s
  WHERE id = %(candidate)s AND %(counted)s
  RETURNING state, yes_votes, no_votes, votes_cast, votes_needed, override, box_state
)
SELECT vote.id, tally.state, tally.yes_votes, tally.no_votes, tally.votes_cast,
  tally.votes_needed, tally.override, tally.box_state
FROM vote LEFT JOIN tally ON true
"""


@dataclass(frozen=True)
class Tally:
    """A candidate's counters right after a vote was added to them (row-locked)."""

    state: str
    yes_votes: int
    no_votes: int
    votes_cast: int
    votes_needed: int
    override: bool | None
    box_state: str


def verify_vote_write(
    *,
    worker_id: int,
    task_id: int,
    item: LoadedItem,
    answer: str,
    correct: bool | None,
    counted: bool,
    seconds: float,
    created_at: datetime,
) -> Tally | None:
    """Insert the vote on a verify task's item and, when it counts, add it to the candidate's
    tally; the tally after it (None when it does not count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            VOTE,
            {
                "worker": worker_id,
                "task": task_id,
                "candidate": item.candidate_id,
                "answer": answer,
                "is_gold": item.is_gold,
                "correct": correct,
                "counted": counted,
                "seconds": seconds,
                "created_at": created_at,
                "yes": int(answer == "yes"),
                "no": int(answer == "no"),
                "unsure": int(answer == "unsure"),
            },
        )
        row = cursor.fetchone()
    return None if row[1] is None else Tally(*row[1:])


_CONSENSUS = f"""
WITH counts AS (
  {{counts}}
)
SELECT counts.accepted, counts.rejected, v.id, v.worker_id, v.answer, v.peer_p_yes,
  {", ".join(f"p.{name}" for name in COIN_FIELDS)}
FROM counts
  LEFT JOIN (labeling_vote v LEFT JOIN labeling_workerprofile p ON p.user_id = v.worker_id)
  ON v.candidate_id = %(candidate)s AND v.question = 'label' AND v.counted
    AND v.answer IN ('yes', 'no')
ORDER BY v.id
"""  # noqa: S608 (column names are constants; values are bound)
CONSENSUS = _CONSENSUS.format(
    counts="""SELECT
    (SELECT COUNT(*) FROM (SELECT 1 FROM labeling_candidate
      WHERE category_id = %(category)s AND state = 'accepted' LIMIT %(cap)s) AS a) AS accepted,
    (SELECT COUNT(*) FROM (SELECT 1 FROM labeling_candidate
      WHERE category_id = %(category)s AND state = 'rejected' LIMIT %(cap)s) AS r) AS rejected"""
)
CONSENSUS_VOTES = _CONSENSUS.format(
    counts="SELECT NULL::bigint AS accepted, NULL::bigint AS rejected"
)
"""CONSENSUS without the category's counts, for a process that remembers them
(category_priors.counts_remembered)."""


@dataclass(frozen=True)
class ConsensusRows:
    """What deciding a candidate reads: its counted yes/no label votes as (id, candidate_id,
    worker_id, answer, peer_p_yes), its voters' profile rows (COIN_FIELDS, confusion decoded)
    and its category's (accepted, rejected) counts, each capped at DECIDED_PRIOR_SAMPLE."""

    votes: list[tuple]
    profiles: list[tuple]
    decided: tuple[int, int]


def consensus_read(*, candidate_id: int, category_id: int) -> ConsensusRows:
    """Read what deciding the candidate needs (see CONSENSUS); run it after the candidate's
    row lock is held."""
    remembered = counts_remembered([category_id])
    with connection.cursor() as cursor:
        cursor.execute(
            CONSENSUS if remembered is None else CONSENSUS_VOTES,
            {"candidate": candidate_id, "category": category_id, "cap": DECIDED_PRIOR_SAMPLE},
        )
        rows = cursor.fetchall()
    votes, profiles = votes_and_voters(
        rows, 2, lambda row: (row[2], candidate_id, row[3], row[4], row[5]), 6
    )
    if remembered is None:
        decided = (int(rows[0][0]), int(rows[0][1]))
        counts_remember({category_id: decided})
    else:
        decided = remembered[category_id]
    return ConsensusRows(votes=votes, profiles=profiles, decided=decided)


def votes_and_voters(
    rows: list[tuple], vote_at: int, vote: Callable[[tuple], tuple], voter_at: int
) -> tuple[list[tuple], list[tuple]]:
    """A consensus read's rows, one per vote (a row whose column ``vote_at`` is NULL has
    none): each row's ``vote(row)``, and the voters' coin fields (COIN_FIELDS, from column
    ``voter_at``), once per voter, the confusion matrix decoded where it came as JSON text."""
    votes, profiles, seen = [], [], set()
    confusion = COIN_FIELDS.index("confusion")
    for row in rows:
        if row[vote_at] is None:
            continue
        votes.append(vote(row))
        profile = row[voter_at:]
        if profile[0] is not None and profile[0] not in seen:
            seen.add(profile[0])
            if isinstance(profile[confusion], str):
                profile = (
                    *profile[:confusion],
                    json.loads(profile[confusion]),
                    *profile[confusion + 1 :],
                )
            profiles.append(tuple(profile))
    return votes, profiles


RECORD_FIELDS = (
    "answered_tasks",
    "answered_items",
    "seconds_total",
    "streak",
    "last_answer_at",
    "gold_seen",
    "gold_correct",
    "gold_evidence",
    "gold_evidence_yes",
    "gold_evidence_no",
    "fast_evidence",
    "said_yes_evidence",
    "said_no_evidence",
    "paused",
    "paused_at",
    "pause_reason",
    "pause_detail",
    "recheck_due",
)
"""The profile columns an answer writes (the peer counts are others' to add to)."""

FINISH_WRITES = f"""
credited AS (
  UPDATE labeling_vote
  SET peer_p_yes = (%(credit_p)s::float8[])[array_position(%(credit_ids)s::bigint[], id)]
  WHERE id = ANY(%(credit_ids)s::bigint[])
  RETURNING 1
),
record AS (
  UPDATE labeling_workerprofile
  SET {", ".join(f"{name} = %({name})s" for name in RECORD_FIELDS)}
  WHERE id = %(profile)s
  RETURNING 1
),
answered AS (
  UPDATE labeling_microtask
  SET status = 'answered', answered_at = %(now)s, client_token = %(client_token)s,
    response = %(response)s::jsonb
  WHERE id = %(task)s
  RETURNING 1
),
released AS (
  UPDATE labeling_taskitem SET leased_until = %(now)s WHERE task_id = %(task)s RETURNING 1
)"""  # noqa: S608 (column names are constants; values are bound)
"""What every lean answer writes after its decisions (CTEs, after one named ``decided``): the
peer credits, the worker's record, the task answered and its lease released."""

FINISH = f"""
WITH decided AS (
  UPDATE labeling_candidate SET posterior = %(posterior)s,
    state = COALESCE(%(state)s, state),
    confidence = COALESCE(%(confidence)s, confidence),
    priority = COALESCE(%(priority)s, priority),
    decided_at = CASE WHEN %(set_decided_at)s THEN %(decided_at)s ELSE decided_at END,
    votes_needed = COALESCE(%(votes_needed)s, votes_needed),
    box_state = COALESCE(%(box_state)s, box_state)
  WHERE id = %(candidate)s AND %(decide)s
  RETURNING 1
),{FINISH_WRITES}
SELECT (SELECT count(*) FROM decided), (SELECT count(*) FROM answered)
"""  # noqa: S608 (column names are constants; values are bound)

DECISION_FIELDS = ("state", "confidence", "priority", "votes_needed", "box_state")


@dataclass(frozen=True)
class Answered:
    """What every answer's last statement writes besides its own outcome (FINISH_WRITES):
    the worker's record (RECORD_FIELDS of ``profile``), the task answered with ``response``
    (kept for a replay by ``client_token``) and its lease released at ``now``."""

    profile: WorkerProfile
    task_id: int
    now: datetime
    client_token: str | None
    response: dict[str, Any]

    def params(self, credits: tuple[list[int], list[float | None]] = ([], [])) -> dict[str, Any]:
        """FINISH_WRITES' values, with the peer credits (vote ids, peer_p_yes)."""
        return {
            "credit_ids": credits[0],
            "credit_p": credits[1],
            "profile": self.profile.pk,
            "task": self.task_id,
            "now": self.now,
            "client_token": self.client_token,
            "response": json.dumps(self.response),
            **{name: getattr(self.profile, name) for name in RECORD_FIELDS},
        }


def verify_answer_finish(
    *,
    candidate_id: int,
    decision: dict[str, Any] | None,
    credits: tuple[list[int], list[float | None]],
    answered: Answered,
) -> None:
    """Write a verify answer's outcome in one statement: ``decision`` (the candidate's fields
    to set, consensus.state_fields; None: leave it), then ``answered``."""
    fields = decision or {}
    params: dict[str, Any] = {name: fields.get(name) for name in DECISION_FIELDS}
    params.update(
        candidate=candidate_id,
        decide=decision is not None,
        posterior=fields.get("posterior", 0.0),
        set_decided_at="decided_at" in fields,
        decided_at=fields.get("decided_at"),
        **answered.params(credits),
    )
    with connection.cursor() as cursor:
        cursor.execute(FINISH, params)

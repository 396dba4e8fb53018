"""A grid answer's statements on PostgreSQL, after answer_statements' LOAD (the task and the
worker's profile locked, read with the task's items in one statement):

1. ``GRID_VOTES`` inserts the nine votes in candidate id order and adds the counted ones to
   their candidates' tallies (the rows locked in id order first, so two grids sharing cells
   can't deadlock), returning each tallied candidate's counters.
2. ``GRID_CONSENSUS`` runs in a fresh statement, so in READ COMMITTED it sees every vote
   committed before we took the locks: the counted yes/no label votes on the grid's real cells
   with their voters' coin fields, and each category's capped decided counts.
3. answer_statements' ``FINISH_WRITES`` behind a ``decided`` CTE that writes every decision
   in one UPDATE: the decisions, the peer credits, the worker's record, the task answered and
   its lease released.

A grid whose control cell was answered wrong runs the same three statements (its votes not
counted, nothing tallied, nothing decided), as a right one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from labeling.services.answer_statements import FINISH_WRITES, Answered, votes_and_voters
from labeling.services.category_priors import (
    DECIDED_PRIOR_SAMPLE,
    counts_remember,
    counts_remembered,
)
from labeling.services.worker_coins import COIN_FIELDS

GRID_VOTES = """
WITH cast_votes AS (
  INSERT INTO labeling_vote (worker_id, task_id, kind, question, candidate_id, box_id, answer,
    is_gold, correct, counted, peer_p_yes, seconds, created_at)
  SELECT %(worker)s, %(task)s, 'grid', 'label', v.candidate, NULL, v.answer, v.is_gold,
    v.correct, v.counted, NULL, %(seconds)s, %(created_at)s
  FROM unnest(%(candidates)s::bigint[], %(answers)s::text[], %(is_gold)s::bool[],
    %(correct)s::bool[], %(counted)s::bool[]) AS v(candidate, answer, is_gold, correct, counted)
  ORDER BY v.candidate
  RETURNING 1
),
locked AS MATERIALIZED (
  SELECT id FROM labeling_candidate WHERE id = ANY(%(tallied)s::bigint[]) ORDER BY id FOR UPDATE
),
tally AS (
  UPDATE labeling_candidate c
  SET yes_votes = c.yes_votes + t.yes, no_votes = c.no_votes + t.no,
    unsure_votes = c.unsure_votes + t.unsure
  FROM locked, unnest(%(tallied)s::bigint[], %(yes)s::int[], %(no)s::int[], %(unsure)s::int[])
    AS t(id, yes, no, unsure)
  WHERE c.id = locked.id AND c.id = t.id
  RETURNING c.id, c.category_id, c.state, c.yes_votes, c.no_votes, c.votes_cast,
    c.votes_needed, c.override, c.box_state
)
SELECT id, category_id, state, yes_votes, no_votes, votes_cast, votes_needed, override,
  box_state
FROM tally ORDER BY id
"""
"""The votes are inserted in candidate id order: the commit's foreign-key checks then
share-lock the candidates in the order tallies lock them, so an uncounted grid and a counted
one on the same cells can't deadlock."""


@dataclass(frozen=True)
class CellTally:
    """A grid cell's candidate right after its vote was added to its tally (row-locked)."""

    id: int
    category_id: int
    state: str
    yes_votes: int
    no_votes: int
    votes_cast: int
    votes_needed: int
    override: bool | None
    box_state: str


@dataclass(frozen=True)
class GridVote:
    """One cell's vote as GRID_VOTES writes it."""

    candidate_id: int
    answer: str
    is_gold: bool
    correct: bool | None
    counted: bool


def grid_votes_write(
    *, worker_id: int, task_id: int, votes: list[GridVote], seconds: float, created_at: datetime
) -> list[CellTally]:
    """Insert a grid's votes and add the counted ones to their candidates' tallies; the tallied
    candidates' counters after it, in id order (none when no vote counts)."""
    tally: dict[int, list[int]] = {}
    for vote in votes:
        if vote.counted:
            row = tally.setdefault(vote.candidate_id, [0, 0, 0])
            row[("yes", "no", "unsure").index(vote.answer)] += 1
    tallied = sorted(tally)
    with connection.cursor() as cursor:
        cursor.execute(
            GRID_VOTES,
            {
                "worker": worker_id,
                "task": task_id,
                "seconds": seconds,
                "created_at": created_at,
                "candidates": [v.candidate_id for v in votes],
                "answers": [v.answer for v in votes],
                "is_gold": [v.is_gold for v in votes],
                "correct": [v.correct for v in votes],
                "counted": [v.counted for v in votes],
                "tallied": tallied,
                **{
                    answer: [tally[i][k] for i in tallied]
                    for k, answer in enumerate(("yes", "no", "unsure"))
                },
            },
        )
        return [CellTally(*row) for row in cursor.fetchall()]


_GRID_CONSENSUS = f"""
WITH counts AS (
  {{counts}}
)
SELECT counts.categories, counts.accepted, counts.rejected, v.id, v.candidate_id, v.worker_id,
  v.answer, v.peer_p_yes, {", ".join(f"p.{name}" for name in COIN_FIELDS)}
FROM counts
  LEFT JOIN (labeling_vote v LEFT JOIN labeling_workerprofile p ON p.user_id = v.worker_id)
  ON v.candidate_id = ANY(%(candidates)s::bigint[]) AND v.question = 'label' AND v.counted
    AND v.answer IN ('yes', 'no')
ORDER BY v.id
"""  # noqa: S608 (column names are constants; values are bound)
GRID_CONSENSUS = _GRID_CONSENSUS.format(
    counts="""SELECT array_agg(d.category ORDER BY d.category) AS categories,
    array_agg(d.accepted ORDER BY d.category) AS accepted,
    array_agg(d.rejected ORDER BY d.category) AS rejected
  FROM (
    SELECT u.category,
      (SELECT COUNT(*) FROM (SELECT 1 FROM labeling_candidate
        WHERE category_id = u.category AND state = 'accepted' LIMIT %(cap)s) AS a) AS accepted,
      (SELECT COUNT(*) FROM (SELECT 1 FROM labeling_candidate
        WHERE category_id = u.category AND state = 'rejected' LIMIT %(cap)s) AS r) AS rejected
    FROM unnest(%(categories)s::bigint[]) AS u(category)
  ) d"""
)
GRID_CONSENSUS_VOTES = _GRID_CONSENSUS.format(
    counts="SELECT NULL::bigint[] AS categories, NULL::bigint[] AS accepted, "
    "NULL::bigint[] AS rejected"
)
"""GRID_CONSENSUS without the categories' counts, for a process that remembers them
(category_priors.counts_remembered)."""


@dataclass(frozen=True)
class GridConsensusRows:
    """What deciding a grid's cells reads: their counted yes/no label votes as (id,
    candidate_id, worker_id, answer, peer_p_yes) in id order, the voters' profile rows
    (COIN_FIELDS, confusion decoded) and each category's (accepted, rejected) counts, each
    capped at DECIDED_PRIOR_SAMPLE."""

    votes: list[tuple[Any, ...]]
    profiles: list[tuple[Any, ...]]
    decided: dict[int, tuple[int, int]]


def grid_consensus_read(*, candidate_ids: list[int], category_ids: set[int]) -> GridConsensusRows:
    """Read what deciding these candidates needs (see GRID_CONSENSUS); run it after their row
    locks are held. The categories' counts come from this process's memory while it has
    them (category_priors.counts_remembered)."""
    remembered = counts_remembered(category_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            GRID_CONSENSUS if remembered is None else GRID_CONSENSUS_VOTES,
            {
                "candidates": candidate_ids,
                "categories": sorted(category_ids),
                "cap": DECIDED_PRIOR_SAMPLE,
            },
        )
        rows = cursor.fetchall()
    votes, profiles = votes_and_voters(rows, 3, lambda row: tuple(row[3:8]), 8)
    if remembered is None:
        categories, accepted, rejected = rows[0][:3]
        decided = {
            int(c): (int(a), int(r))
            for c, a, r in zip(categories or [], accepted or [], rejected or [], strict=True)
        }
        counts_remember(decided)
    else:
        decided = remembered
    return GridConsensusRows(votes=votes, profiles=profiles, decided=decided)


GRID_FINISH = f"""
WITH decided AS (
  UPDATE labeling_candidate c SET posterior = d.posterior,
    state = COALESCE(d.state, c.state),
    confidence = COALESCE(d.confidence, c.confidence),
    priority = COALESCE(d.priority, c.priority),
    decided_at = CASE WHEN d.set_decided_at THEN d.decided_at ELSE c.decided_at END,
    votes_needed = COALESCE(d.votes_needed, c.votes_needed),
    box_state = COALESCE(d.box_state, c.box_state)
  FROM unnest(%(ids)s::bigint[], %(posteriors)s::float8[], %(states)s::text[],
    %(confidences)s::float8[], %(priorities)s::int[], %(votes_needed)s::int[],
    %(set_decided_at)s::bool[], %(decided_at)s::timestamptz[], %(box_states)s::text[])
    AS d(id, posterior, state, confidence, priority, votes_needed, set_decided_at, decided_at,
      box_state)
  WHERE c.id = d.id
  RETURNING 1
),
-- a grid whose votes don't count gives its cells' leases back without a vote: their
-- full-until hints are void (leases.ROOM); a row another transaction holds keeps its hint,
-- no longer than the lease it was noted from
voided AS (
  UPDATE labeling_candidate c SET full_until = NULL, full_needed = NULL
  WHERE c.id IN (SELECT v.id FROM labeling_candidate v
    WHERE v.id = ANY(%(voided)s::bigint[]) AND v.full_until > %(now)s
    ORDER BY v.id FOR NO KEY UPDATE SKIP LOCKED)
  RETURNING 1
),{FINISH_WRITES}
SELECT (SELECT count(*) FROM decided), (SELECT count(*) FROM answered)
"""  # noqa: S608 (column names are constants; values are bound)


def grid_answer_finish(
    *,
    decisions: dict[int, dict[str, Any]],
    credits: tuple[list[int], list[float | None]],
    answered: Answered,
    voided: list[int],
) -> None:
    """Write a grid answer's outcome in one statement: ``decisions`` (per candidate id, the
    fields to set, consensus.state_fields; a field left out keeps its value), the full-until
    hints of the ``voided`` candidates cleared (an uncounted grid's real cells: none of
    them has a decision), then ``answered``."""
    ids = sorted(decisions)
    rows = [decisions[pk] for pk in ids]
    params: dict[str, Any] = {
        "ids": ids,
        "posteriors": [fields["posterior"] for fields in rows],
        "states": [fields.get("state") for fields in rows],
        "confidences": [fields.get("confidence") for fields in rows],
        "priorities": [fields.get("priority") for fields in rows],
        "votes_needed": [fields.get("votes_needed") for fields in rows],
        "set_decided_at": ["decided_at" in fields for fields in rows],
        "decided_at": [fields.get("decided_at") for fields in rows],
        "box_states": [fields.get("box_state") for fields in rows],
        "voided": voided,
        **answered.params(credits),
    }
    with connection.cursor() as cursor:
        cursor.execute(GRID_FINISH, params)

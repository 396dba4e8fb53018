"""Label answers (a verify task, a grid) on PostgreSQL in the fewest statements, after
answer_statements' LOAD has locked and read the task, the worker's profile and the items:
one statement writes the votes and tallies, one reads what consensus decides on (after the
row locks), and one writes the decisions, the peer credits, the worker's record and the
answered task. Consensus is split into its reads and its pure steps
(labeling.services.consensus), so these decide exactly as candidates_decide does on the ORM
path (labeling.services.answers). A control item goes through the same statements as a real
one: its answer does not come back faster.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from labeling.consensus import decided_prior
from labeling.crowd.answers import ItemSpec, parse_answers
from labeling.crowd.gates import ControlAnswer, LabelAnswer
from labeling.models import Candidate, MicroTask, WorkerProfile
from labeling.services.answer_records import Submitted, profile_record, worker_stats
from labeling.services.answer_statements import (
    Answered,
    ConsensusRows,
    LoadedItem,
    Tally,
    consensus_read,
    verify_answer_finish,
    verify_vote_write,
)
from labeling.services.category_priors import DECIDED_PRIOR_SAMPLE
from labeling.services.consensus import (
    PeerCredits,
    confidence_tables,
    decisions_of,
    live_votes_of,
    peer_credits,
    peer_learn,
    state_fields,
)
from labeling.services.grid_statements import (
    CellTally,
    GridConsensusRows,
    GridVote,
    grid_answer_finish,
    grid_consensus_read,
    grid_votes_write,
)
from labeling.services.worker_coins import worker_coins_of


def _tallied(tally: Any, pk: int, category_id: int) -> Candidate:
    """A candidate as consensus reads it, from a tally row read with the answer's statements
    (state, counts, votes needed, override, box stage), not from the database."""
    candidate = Candidate(
        pk=pk,
        category_id=category_id,
        state=tally.state,
        yes_votes=tally.yes_votes,
        no_votes=tally.no_votes,
        votes_needed=tally.votes_needed,
        override=tally.override,
        box_state=tally.box_state,
    )
    candidate.votes_cast = tally.votes_cast
    return candidate


def _verify_consensus(
    item: LoadedItem, tally: Tally | None, counted_rows: ConsensusRows
) -> tuple[dict[str, object] | None, PeerCredits | None]:
    """candidates_decide for a verify answer's candidate over what CONSENSUS read: the fields
    to write (None while it is not open or the vote did not count) and the peer credits of a
    decision."""
    if tally is None or tally.state != Candidate.State.OPEN:
        return None, None
    candidate = _tallied(tally, item.candidate_id, item.category_id)
    voters = {row[2] for row in counted_rows.votes}
    live = live_votes_of(
        [candidate.pk], counted_rows.votes, worker_coins_of(voters, counted_rows.profiles)
    )
    accepted, rejected = counted_rows.decided
    learnt = {candidate.category_id: float(decided_prior(accepted, accepted + rejected))}
    tables = confidence_tables({candidate.category_id})
    decisions, live = decisions_of([candidate], live, learnt, tables)
    fields = state_fields(candidate, decisions[candidate.pk], timezone.now())
    if fields.get("state", Candidate.State.OPEN) == Candidate.State.OPEN:
        return fields, None
    return fields, peer_credits(live, [0], 1)


def verify_answer(
    task: MicroTask,
    profile: WorkerProfile,
    items: list[LoadedItem],
    answers: Any,
    client_token: str,
) -> Submitted:
    """answer_submit's verify answer on PostgreSQL, in the three statements after the load
    (labeling.services.answer_statements): the vote and tally, what consensus reads, and
    every write that follows from them."""
    (item,) = items
    spec = ItemSpec(uid=str(item.uid), width=item.width, height=item.height)
    (parsed,) = parse_answers(task.kind, answers, [spec])
    now = timezone.now()
    shown = max(filter(None, [task.issued_at, profile.last_answer_at]))
    seconds = max(0.0, (now - shown).total_seconds())
    known = item.known_answer()
    control = None if known is None else ControlAnswer(known, (parsed.answer == "yes") == known)
    counted = control is None  # a control never counts; a real item alone in its task does
    tally = verify_vote_write(
        worker_id=task.worker_id,
        task_id=task.pk,
        item=item,
        answer=parsed.answer,
        correct=None if control is None else control.right,
        counted=counted,
        seconds=seconds,
        created_at=timezone.now(),
    )
    rows = consensus_read(candidate_id=item.candidate_id, category_id=item.category_id)
    decision, credits = _verify_consensus(item, tally, rows)
    if credits is not None:
        vote_ids = credits.vote_ids
        transaction.on_commit(lambda: peer_learn(vote_ids))
    labels: tuple[LabelAnswer, ...] = ()
    if counted and parsed.answer in ("yes", "no"):
        # the one-answer gate reads the category's decisions with this answer's own in them
        accepted, rejected = rows.decided
        state = (decision or {}).get("state")
        if state == Candidate.State.ACCEPTED:
            accepted = min(accepted + 1, DECIDED_PRIOR_SAMPLE)
        elif state == Candidate.State.REJECTED:
            rejected = min(rejected + 1, DECIDED_PRIOR_SAMPLE)
        labels = (LabelAnswer(parsed.answer == "yes", accepted, rejected),)
    profile_record(
        profile,
        items=1,
        seconds_per_item=seconds,
        gold=[] if control is None else [control],
        labels=labels,
    )
    body = worker_stats(profile)
    verify_answer_finish(
        candidate_id=item.candidate_id,
        decision=decision,
        credits=([], []) if credits is None else (credits.vote_ids, credits.peer_p_yes),
        answered=Answered(profile, task.pk, now, client_token or None, body),
    )
    return Submitted(body=body, replayed=False)


def _grid_consensus(
    tallies: list[CellTally], rows: GridConsensusRows
) -> tuple[dict[int, dict[str, object]], PeerCredits | None]:
    """candidates_decide for a grid's tallied cells over what GRID_CONSENSUS read: per open
    candidate the fields to write, and the peer credits of those it decided."""
    candidates = []
    for tally in tallies:  # in id order, as candidates_decide takes them
        if tally.state != Candidate.State.OPEN:
            continue
        candidates.append(_tallied(tally, tally.id, tally.category_id))
    if not candidates:
        return {}, None
    ids = [candidate.pk for candidate in candidates]
    wanted = set(ids)
    votes = [row for row in rows.votes if row[1] in wanted]
    voters = {row[2] for row in votes}
    profiles = [row for row in rows.profiles if row[0] in voters]
    live = live_votes_of(ids, votes, worker_coins_of(voters, profiles))
    categories = {candidate.category_id for candidate in candidates}
    learnt = {
        category: float(decided_prior(accepted, accepted + rejected))
        for category, (accepted, rejected) in rows.decided.items()
        if category in categories
    }
    decisions, live = decisions_of(candidates, live, learnt, confidence_tables(categories))
    now = timezone.now()
    changes, decided = {}, []
    for i, candidate in enumerate(candidates):
        fields = state_fields(candidate, decisions[candidate.pk], now)
        if fields.get("state", Candidate.State.OPEN) != Candidate.State.OPEN:
            decided.append(i)
        changes[candidate.pk] = fields
    return changes, peer_credits(live, decided, len(candidates))


def _grid_labels(
    task: MicroTask,
    votes: list[GridVote],
    rows: GridConsensusRows,
    tallies: list[CellTally],
    decisions: dict[int, dict[str, object]],
) -> tuple[LabelAnswer, ...]:
    """The grid's counted yes/no votes for the one-answer gate, each with the task category's
    capped decided counts with this answer's own decisions in them."""
    said = [v.answer == "yes" for v in votes if v.counted and v.answer in ("yes", "no")]
    if not said:
        return ()
    accepted, rejected = rows.decided[task.category_id]
    for tally in tallies:
        if tally.category_id != task.category_id or tally.id not in decisions:
            continue
        state = decisions[tally.id].get("state")
        accepted += state == Candidate.State.ACCEPTED
        rejected += state == Candidate.State.REJECTED
    accepted, rejected = min(accepted, DECIDED_PRIOR_SAMPLE), min(rejected, DECIDED_PRIOR_SAMPLE)
    return tuple(LabelAnswer(yes, accepted, rejected) for yes in said)


def grid_answer(
    task: MicroTask,
    profile: WorkerProfile,
    items: list[LoadedItem],
    answers: Any,
    client_token: str,
) -> Submitted:
    """answer_submit's grid answer on PostgreSQL, in the three statements after the load
    (labeling.services.grid_statements): the votes and tallies, what consensus reads, and
    every write that follows from them. The unknown cells count only when every control cell
    was answered right (reCAPTCHA's rule); a control never counts."""
    specs = [ItemSpec(uid=str(item.uid), width=item.width, height=item.height) for item in items]
    parsed = parse_answers(task.kind, answers, specs)
    now = timezone.now()
    # A prefetched task was issued while the previous one was on screen: time it from
    # whichever came later, its issue or the worker's previous answer.
    shown = max(filter(None, [task.issued_at, profile.last_answer_at]))
    seconds = max(0.0, (now - shown).total_seconds()) / len(items)
    controls = [
        None if known is None else ControlAnswer(known, (answer.answer == "yes") == known)
        for item, answer in zip(items, parsed, strict=True)
        for known in [item.known_answer()]
    ]
    gold = [control for control in controls if control is not None]
    counted = all(control.right for control in gold)
    votes = [
        GridVote(
            candidate_id=item.candidate_id,
            answer=answer.answer,
            is_gold=item.is_gold,
            correct=None if control is None else control.right,
            counted=counted and not item.is_gold,
        )
        for item, answer, control in zip(items, parsed, controls, strict=True)
    ]
    tallies = grid_votes_write(
        worker_id=task.worker_id,
        task_id=task.pk,
        votes=votes,
        seconds=seconds,
        created_at=timezone.now(),
    )
    # read whether or not the votes count: a wrong control costs what a right one does
    real = [item for item in items if not item.is_gold]
    rows = grid_consensus_read(
        candidate_ids=sorted({item.candidate_id for item in real}),
        category_ids={task.category_id} | {item.category_id for item in real},
    )
    decisions, credits = _grid_consensus(tallies, rows)
    if credits is not None:
        vote_ids = credits.vote_ids
        transaction.on_commit(lambda: peer_learn(vote_ids))
    profile_record(
        profile,
        items=len(items),
        seconds_per_item=seconds,
        gold=gold,
        labels=_grid_labels(task, votes, rows, tallies, decisions),
    )
    body = worker_stats(profile)
    grid_answer_finish(
        decisions=decisions,
        credits=([], []) if credits is None else (credits.vote_ids, credits.peer_p_yes),
        answered=Answered(profile, task.pk, now, client_token or None, body),
        voided=[] if counted else sorted(item.candidate_id for item in real),
    )
    return Submitted(body=body, replayed=False)

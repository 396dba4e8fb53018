"""Consensus as the crowd answers: posteriors, decisions, the review queue, fused boxes and
ImageNet's confidence tables (the Dawid-Skene re-aggregation over every vote is in
labeling.services.reaggregation). The arithmetic lives in labeling.consensus (pure numpy);
this module reads votes, calls it and writes the results.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, FloatField, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Abs
from django.utils import timezone

from labeling.consensus import (
    ACCEPT,
    CONTINUE,
    PEER_CONFIDENCE,
    REJECT,
    REVIEW,
    allocate,
    binary_posteriors,
    cautious_posteriors,
    decide,
    fuse_boxes,
    gold_accuracy,
    vote_accuracies,
    vote_agreement,
)
from labeling.consensus.dynamic import ConfidenceTable as Table
from labeling.models import (
    PEER_PENDING,
    Box,
    Candidate,
    ConfidenceTable,
    ObjectBox,
    TaskItem,
    User,
    Vote,
    WorkerProfile,
)
from labeling.services.category_priors import category_decided_priors
from labeling.services.contested import checks_sweep, is_contested, settle
from labeling.services.worker_coins import peer_credits_apply, worker_coins

log = logging.getLogger(__name__)

YES, NO = "yes", "no"
STATE_OF_CODE = {
    ACCEPT: Candidate.State.ACCEPTED,
    REJECT: Candidate.State.REJECTED,
    REVIEW: Candidate.State.NEEDS_REVIEW,
    CONTINUE: Candidate.State.OPEN,
}


def worker_accuracies(worker_ids: Iterable[int]) -> dict[int, float]:
    """Each worker's accuracy on yes/no questions: from the last Dawid-Skene run when there was
    one, else from gold answers with a Beta(2, 1) prior (a new worker counts as 2/3 right)."""
    ids = set(worker_ids)
    rows = WorkerProfile.objects.filter(user_id__in=ids).values_list(
        "user_id", "em_accuracy", "gold_seen", "gold_correct"
    )
    known = {user_id: (em, seen, correct) for user_id, em, seen, correct in rows}
    return {worker_id: accuracy_of(*known.get(worker_id, (None, 0, 0))) for worker_id in ids}


def accuracy_of(em_accuracy: float | None, gold_seen: int, gold_correct: int) -> float:
    """worker_accuracies for one worker from his profile's fields (None, 0, 0 without one)."""
    if em_accuracy is not None:
        return float(em_accuracy)
    return float(gold_accuracy(gold_correct, gold_seen))


def confidence_tables(category_ids: set[int]) -> dict[int, Table]:
    if settings.CROWDNET_CONSENSUS_RULE != "imagenet":
        return {}
    tables = {}
    for row in ConfidenceTable.objects.filter(category_id__in=category_ids):
        values = np.array(row.table, dtype=np.float64)  # JSON null -> nan
        tables[row.category_id] = Table(cap=row.cap, table=values, prior=row.prior)
    return tables


@dataclass(frozen=True)
class Decision:
    """Where the crowd stands on one candidate after its latest vote."""

    posterior: float
    code: int
    priority: int


@dataclass(frozen=True)
class LiveVotes:
    """Counted yes/no label votes on a set of candidates, as arrays (one entry per vote)."""

    ids: np.ndarray
    items: np.ndarray
    workers: np.ndarray
    answers: np.ndarray
    accuracies: np.ndarray
    credited: np.ndarray  # the P(yes) each vote is credited with in its worker's record, or NaN
    learnt_priors: np.ndarray  # per item, its category's decided_prior


def _live_votes(ids: list[int]) -> LiveVotes:
    """The candidates' counted label votes, each weighted by its voter's live coins (a yes by
    his sensitivity against his specificity, a no the other way round)."""
    votes = list(
        Vote.objects.filter(
            candidate_id__in=ids, question="label", counted=True, answer__in=[YES, NO]
        ).values_list("id", "candidate_id", "worker_id", "answer", "peer_p_yes")
    )
    return live_votes_of(ids, votes, worker_coins(row[2] for row in votes))


def live_votes_of(
    ids: list[int], votes: list[tuple], coins: dict[int, tuple[float, float]]
) -> LiveVotes:
    """LiveVotes from vote rows (id, candidate_id, worker_id, answer, peer_p_yes) on the
    candidates ``ids`` and their voters' coins (worker_coins)."""
    index = {pk: i for i, pk in enumerate(ids)}
    workers = np.array([row[2] for row in votes], dtype=np.int64)
    answers = np.array([row[3] == YES for row in votes], dtype=np.int64)
    sens = np.array([coins[w][0] for w in workers.tolist()], dtype=np.float64)
    spec = np.array([coins[w][1] for w in workers.tolist()], dtype=np.float64)
    return LiveVotes(
        ids=np.array([row[0] for row in votes], dtype=np.int64),
        items=np.array([index[row[1]] for row in votes], dtype=np.int64),
        workers=workers,
        answers=answers,
        accuracies=vote_accuracies(answers, sens, spec),
        credited=np.array([np.nan if row[4] is None else row[4] for row in votes], np.float64),
        learnt_priors=np.full(len(ids), settings.CROWDNET_CONSENSUS_PRIOR),
    )


def _decisions(candidates: list[Candidate]) -> tuple[dict[int, Decision], LiveVotes]:
    """Posterior and decision code per candidate, from its counted yes/no label votes, and the
    votes they came from. The posterior is the cautious one (cautious_posteriors): under the
    configured prior or the category's share of yes among its decisions, whichever asks more
    evidence of the side the item leans to."""
    categories = {c.category_id for c in candidates}
    live = _live_votes([c.pk for c in candidates])
    return decisions_of(
        candidates, live, category_decided_priors(categories), confidence_tables(categories)
    )


def decisions_of(
    candidates: list[Candidate], live: LiveVotes, learnt: dict[int, float], tables: dict[int, Table]
) -> tuple[dict[int, Decision], LiveVotes]:
    """_decisions over what it reads: the candidates' live votes, their categories' learnt
    priors (category_decided_priors) and confidence tables."""
    ids = [c.pk for c in candidates]
    index = {pk: i for i, pk in enumerate(ids)}
    neutral = binary_posteriors(
        live.items, live.answers, live.accuracies, len(ids), settings.CROWDNET_CONSENSUS_PRIOR
    )
    live = replace(
        live,
        learnt_priors=np.array([learnt[c.category_id] for c in candidates], dtype=np.float64),
    )
    posterior = cautious_posteriors(neutral, settings.CROWDNET_CONSENSUS_PRIOR, live.learnt_priors)
    cast = np.array([c.votes_cast for c in candidates], dtype=np.int64)
    codes, priority = allocate(
        posterior,
        cast,
        threshold=settings.CROWDNET_CONSENSUS_THRESHOLD,
        cap=settings.CROWDNET_CONSENSUS_VOTE_CAP,
    )
    for i, candidate in enumerate(candidates):
        table = tables.get(candidate.category_id)
        if table is not None and candidate.yes_votes + candidate.no_votes <= table.cap:
            yes, no = np.array([candidate.yes_votes]), np.array([candidate.no_votes])
            cap = min(table.cap, settings.CROWDNET_CONSENSUS_VOTE_CAP)
            codes[i] = decide(
                table, yes, no, threshold=settings.CROWDNET_CONSENSUS_THRESHOLD, cap=cap
            )[0]
            value = table.table[candidate.yes_votes, candidate.no_votes]
            if np.isfinite(value):
                posterior[i] = value
    decisions = {
        pk: Decision(float(posterior[i]), int(codes[i]), int(priority[i]))
        for pk, i in index.items()
    }
    return decisions, live


def state_fields(candidate: Candidate, decision: Decision, now) -> dict[str, object]:
    """The candidate's new state and counters, or only its posterior while a curator's
    override stands or before it has the votes it was waiting for."""
    fields: dict[str, object] = {"posterior": decision.posterior}
    if candidate.override is not None or candidate.votes_cast < candidate.votes_needed:
        return fields
    p = decision.posterior
    state = STATE_OF_CODE[decision.code]
    # allocate gives a priority only to items that go on; decided ones leave the pool
    fields.update(state=state, confidence=max(p, 1 - p), priority=decision.priority)
    if state in (Candidate.State.ACCEPTED, Candidate.State.REJECTED):
        fields["decided_at"] = now
    elif state == Candidate.State.OPEN:  # one more vote, asked early if close to a decision
        fields.update(votes_needed=candidate.votes_cast + 1, decided_at=None)
    if state == Candidate.State.ACCEPTED and candidate.box_state == Candidate.BoxState.NONE:
        fields["box_state"] = Candidate.BoxState.DRAW  # boxes are drawn only on accepted images
    return fields


def candidates_decide(candidate_ids: Sequence[int]) -> int:
    """Bring the posterior and state of these open candidates up to date with their votes;
    returns how many were decided (accepted, rejected or sent to review). Call inside the
    transaction that wrote the votes: rows are taken in id order, so grids can't deadlock."""
    if not candidate_ids:
        return 0
    candidates = list(
        Candidate.objects.select_for_update()
        .filter(pk__in=candidate_ids, state=Candidate.State.OPEN)
        .order_by("id")
    )
    if not candidates:
        return 0
    decisions, live = _decisions(candidates)
    now = timezone.now()
    decided, changes = [], []
    for i, candidate in enumerate(candidates):
        fields = state_fields(candidate, decisions[candidate.pk], now)
        if fields.get("state", Candidate.State.OPEN) != Candidate.State.OPEN:
            decided.append(i)
        changes.append(fields)
    _decisions_write(candidates, changes)
    _learn_from(live, decided, len(candidates))
    return len(decided)


DECIDED_FIELDS = (
    "posterior",
    "state",
    "confidence",
    "priority",
    "votes_needed",
    "decided_at",
    "box_state",
)
DECISIONS_SQL = """
UPDATE labeling_candidate c SET posterior = v.posterior, state = v.state,
  confidence = v.confidence, priority = v.priority, votes_needed = v.votes_needed,
  decided_at = v.decided_at, box_state = v.box_state
FROM unnest(%s::bigint[], %s::float8[], %s::text[], %s::float8[], %s::int[], %s::int[],
            %s::timestamptz[], %s::text[])
  AS v(id, posterior, state, confidence, priority, votes_needed, decided_at, box_state)
WHERE c.id = v.id
"""
"""Every candidate's new decision fields in one statement (a grid decides up to 8 at once)."""


def _decisions_write(candidates: list[Candidate], changes: list[dict[str, object]]) -> None:
    """Write each (row-locked) candidate's changed fields: on PostgreSQL one UPDATE for all,
    each row's other decision fields written back as they were read under the lock."""
    if connection.vendor != "postgresql":  # SQLite serialises writers: one UPDATE per row
        for candidate, fields in zip(candidates, changes, strict=True):
            Candidate.objects.filter(pk=candidate.pk).update(**fields)
        return
    columns = [[c.pk for c in candidates]] + [
        [fields.get(name, getattr(c, name)) for c, fields in zip(candidates, changes, strict=True)]
        for name in DECIDED_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(DECISIONS_SQL, columns)


def _learn_from(
    live: LiveVotes, decided: list[int], n_items: int, withdrawn: Sequence[int] = ()
) -> None:
    """Write peer_credits' credits on the votes and, once the answer commits, add them to the
    voters' records."""
    credits = peer_credits(live, decided, n_items, withdrawn)
    if credits is None:
        return
    Vote.objects.bulk_update(
        [
            Vote(pk=pk, peer_p_yes=q)
            for pk, q in zip(credits.vote_ids, credits.peer_p_yes, strict=True)
        ],
        ["peer_p_yes"],
    )
    vote_ids = credits.vote_ids
    transaction.on_commit(lambda: peer_learn(vote_ids))


@dataclass(frozen=True)
class PeerCredits:
    """What a decision credits: each vote's new peer_p_yes (None: not credited), added to
    its voter's record once the answer commits (worker_coins.peer_credits_apply)."""

    vote_ids: list[int]
    peer_p_yes: list[float | None]


def peer_credits(
    live: LiveVotes, decided: list[int], n_items: int, withdrawn: Sequence[int] = ()
) -> PeerCredits | None:
    """Each voter on the items just decided (sent to review included: learning only where the
    crowd agreed would flatter everyone) is credited with what the item's other votes said,
    taken as cautiously as decisions are (cautious_posteriors), where they were confident
    (PEER_CONFIDENCE); once added to his record (after the commit) any worker whose votes
    thereby stop carrying evidence has his decisions looked at again. A vote already credited
    at an earlier decision of a reopened item has that credit replaced, not added to; on the
    ``withdrawn`` items (back to open) it is taken back. None when no credit moves."""
    prior = settings.CROWDNET_CONSENSUS_PRIOR
    p_others = cautious_posteriors(
        vote_agreement(live.items, live.answers, live.accuracies, n_items, prior),
        prior,
        live.learnt_priors[live.items],
    )
    now = np.isin(live.items, decided)
    mine = now | np.isin(live.items, withdrawn)
    sure = np.maximum(p_others, 1 - p_others) >= PEER_CONFIDENCE
    credit = np.where(now & sure, p_others, np.nan)
    old = np.where(mine, live.credited, np.nan)
    moved = mine & ~(np.isnan(credit) & np.isnan(old)) & ~(credit == old)
    if not moved.any():
        return None
    return PeerCredits(
        vote_ids=[int(pk) for pk in live.ids[moved].tolist()],
        peer_p_yes=[None if np.isnan(q) else float(q) for q in credit[moved].tolist()],
    )


def peer_learn(vote_ids: Sequence[int] | None = None) -> int:
    """Add the credits written on these votes (None: any not added yet) to the voters' records
    (worker_coins.peer_credits_apply), and look again at the decisions of any worker whose
    votes thereby stop carrying evidence or whom the peer-agreement gate pauses; returns how
    many workers' decisions were looked at."""
    reopened = peer_credits_apply(vote_ids)
    for worker_id in reopened:
        worker_decisions_reopen(worker_id=worker_id)
    return len(reopened)


RECHECK_GRACE = timedelta(minutes=1)
"""How long the sweep leaves a due recheck to the commit hook that normally runs it at once."""


def commit_hooks_sweep(max_batches: int = 20, max_workers: int = 200) -> int:
    """Do what the commit hooks of answers and pauses left undone when their process was
    killed between the commit and the hook: check the votes on curators' decisions against them
    (contested.checks_sweep, which writes credits and pauses of its own), add the credits
    written on votes but not added to
    their workers' records (peer_learn, up to ``max_batches`` batches of
    worker_coins.PEER_SWEEP_BATCH votes), then take again the decisions of up to
    ``max_workers`` workers whose recheck has been due for over RECHECK_GRACE (a pause by a gate
    or a curator, a loss of weight). Beat runs it (labeling.tasks.commit_hooks_sweep); returns
    how many workers' decisions were looked at."""
    checks_sweep()
    reopened = 0
    for _ in range(max_batches):
        if not Vote.objects.filter(PEER_PENDING).exists():
            break
        reopened += peer_learn(None)
    due = timezone.now() - RECHECK_GRACE
    for worker_id in (
        WorkerProfile.objects.filter(recheck_due__lte=due)
        .order_by("recheck_due")
        .values_list("user_id", flat=True)[:max_workers]
    ):
        worker_decisions_reopen(worker_id=worker_id)
        reopened += 1
    return reopened


def worker_decisions_reopen(*, worker_id: int) -> int:
    """Decide again, with everyone's coins as they stand now, the crowd's decisions this worker
    voted on (a curator's and control items untouched): one that no longer holds goes back to
    open waiting for one more vote (its votes' credits taken back until it is decided again),
    or to its new decision; every vote on the decisions that still hold or are new is credited
    anew with what the other votes say now (a discredited worker's weight had made those calls
    surer than they are); returns how many changed."""
    voted = Vote.objects.filter(
        worker_id=worker_id, question="label", counted=True, answer__in=[YES, NO]
    ).values("candidate_id")
    changed = 0
    started = timezone.now()
    with transaction.atomic():
        # done for every cause set up to now (a later one sets a later time)
        WorkerProfile.objects.filter(user_id=worker_id, recheck_due__lte=started).update(
            recheck_due=None
        )
        candidates = list(
            Candidate.objects.select_for_update(of=("self",))
            .filter(
                pk__in=voted,
                state__in=[Candidate.State.ACCEPTED, Candidate.State.REJECTED],
                override__isnull=True,
                gold__isnull=True,
            )
            .order_by("id")
        )
        if not candidates:
            return 0
        decisions, live = _decisions(candidates)
        now = timezone.now()
        redecided, withdrawn = [], []
        for i, candidate in enumerate(candidates):
            decision = decisions[candidate.pk]
            state = STATE_OF_CODE[decision.code]
            fields: dict[str, object] = {"posterior": decision.posterior}
            (withdrawn if state == Candidate.State.OPEN else redecided).append(i)
            if state != candidate.state:
                changed += 1
                p = decision.posterior
                fields.update(state=state, confidence=max(p, 1 - p), priority=decision.priority)
                fields["decided_at"] = None if state == Candidate.State.OPEN else now
                if state == Candidate.State.OPEN:
                    fields["votes_needed"] = max(candidate.votes_needed, candidate.votes_cast + 1)
                box_state = candidate.box_state
                if state == Candidate.State.ACCEPTED and box_state == Candidate.BoxState.NONE:
                    # boxes are drawn only on accepted images
                    fields["box_state"] = Candidate.BoxState.DRAW
            Candidate.objects.filter(pk=candidate.pk).update(**fields)
        _learn_from(live, redecided, len(candidates), withdrawn)
    return changed


def box_accepted(box: Box) -> bool:
    """Whether a box's verification votes, weighted by each checker's reliability, say it is
    tight around one object (posterior above one half)."""
    votes = list(
        Vote.objects.filter(
            box=box, question="box", counted=True, answer__in=[YES, NO]
        ).values_list("worker_id", "answer")
    )
    return box_verdict(votes, worker_accuracies(worker for worker, _ in votes))


def box_verdict(votes: list[tuple[int, str]], accuracy: dict[int, float]) -> bool:
    """box_accepted over what it reads: the box's counted yes/no checks as (worker_id, answer)
    and each checker's accuracy (worker_accuracies)."""
    if not votes:
        return False
    posterior = binary_posteriors(
        np.zeros(len(votes), dtype=np.int64),
        np.array([answer == YES for _, answer in votes], dtype=np.int64),
        np.array([accuracy[worker] for worker, _ in votes]),
        1,
        0.5,
    )[0]
    return bool(posterior > 0.5)


def objects_fuse(candidate_id: int) -> list[ObjectBox]:
    """Replace the candidate's objects with its accepted boxes fused by IoU (one object per
    cluster, coordinates weighted by the drawers' reliability)."""
    boxes = list(
        Box.objects.filter(candidate_id=candidate_id, state=Box.State.ACCEPTED).values_list(
            "worker_id", "x0", "y0", "x1", "y1"
        )
    )
    ObjectBox.objects.filter(candidate_id=candidate_id).delete()
    if not boxes:
        return []
    workers = np.array([w or 0 for w, *_ in boxes], dtype=np.int64)
    accuracy = worker_accuracies(int(w) for w in workers)
    fused = fuse_boxes(
        np.array([coords for _, *coords in boxes], dtype=np.float64),
        workers,
        np.array([accuracy[int(w)] for w in workers]),
        iou_threshold=settings.CROWDNET_BOX_IOU,
    )
    return ObjectBox.objects.bulk_create(
        ObjectBox(
            candidate_id=candidate_id,
            x0=float(box[0]),
            y0=float(box[1]),
            x1=float(box[2]),
            y1=float(box[3]),
            score=float(min(1.0, score)),
            drawers=int(drawers),
        )
        for box, score, drawers in zip(fused.boxes, fused.scores, fused.n_workers, strict=True)
    )


def decision_override(*, candidate: Candidate, accepted: bool | None, by: User) -> Candidate:
    """A curator's decision, which wins over the crowd's now and in every later aggregation;
    ``accepted=None`` lifts it and gives the candidate back to the crowd."""
    now = timezone.now()
    with transaction.atomic():
        candidate = Candidate.objects.select_for_update().get(pk=candidate.pk)
        contested = accepted is not None and is_contested(candidate.pk)
        if accepted is None:
            candidate.override, candidate.override_by = None, None
            candidate.state = Candidate.State.OPEN
            candidate.votes_needed = max(candidate.votes_needed, candidate.votes_cast + 1)
            candidate.decided_at = None
        else:
            candidate.override, candidate.override_by = accepted, by
            candidate.state = Candidate.State.ACCEPTED if accepted else Candidate.State.REJECTED
            candidate.confidence, candidate.decided_at = 1.0, now
            if accepted and candidate.box_state == Candidate.BoxState.NONE:
                candidate.box_state = Candidate.BoxState.DRAW
            elif candidate.box_state == Candidate.BoxState.REVIEW:
                # drawers disputed the image: "yes" says it shows one, so it is drawn again
                states = Candidate.BoxState
                candidate.box_state = states.DRAW if accepted else states.NONE
        candidate.save(
            update_fields=[
                "override",
                "override_by",
                "state",
                "votes_needed",
                "decided_at",
                "confidence",
                "box_state",
            ]
        )
        settle(candidate.pk, contested=contested)  # a contested call's votes are checked
    return candidate


def review_queue() -> QuerySet[Candidate]:
    """Candidates the crowd could not decide within the vote cap, and accepted images whose
    drawers could not agree whether any instance is there to box; oldest first."""
    return Candidate.objects.filter(
        Q(state=Candidate.State.NEEDS_REVIEW)
        | Q(state=Candidate.State.ACCEPTED, box_state=Candidate.BoxState.REVIEW)
    ).order_by(F("updated_at").asc(), "id")


def model_disagreements(margin: float | None = None) -> QuerySet[Candidate]:
    """Items the crowd decided and the current model strongly contradicts (accepted while the
    model gives at most ``margin``, rejected while it gives at least 1 - ``margin``), that no
    curator has settled; the strongest disagreement first. Control items are left out: curated
    gold and decided items served as controls (their answer is what workers are checked on)."""
    margin = settings.CROWDNET_REVIEW_MODEL_MARGIN if margin is None else margin
    served_as_control = TaskItem.objects.filter(candidate=OuterRef("pk"), is_gold=True)
    accepted, rejected = Candidate.State.ACCEPTED, Candidate.State.REJECTED
    decided_as = Case(
        When(state=accepted, then=Value(1.0)), default=Value(0.0), output_field=FloatField()
    )
    return (
        Candidate.objects.filter(override__isnull=True, gold__isnull=True)
        .filter(Q(state=accepted, model_p__lte=margin) | Q(state=rejected, model_p__gte=1 - margin))
        .exclude(Exists(served_as_control))
        .annotate(gap=Abs(F("model_p") - decided_as))
        .order_by("-gap", "id")
    )

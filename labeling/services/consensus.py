"""Consensus as the crowd answers: posteriors, decisions, the review queue, fused boxes, and the
Dawid-Skene re-aggregation over every vote. The arithmetic lives in labeling.consensus (pure
numpy); this module reads votes, calls it and writes the results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, Exists, F, FloatField, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Abs
from django.utils import timezone

from labeling.consensus import (
    ACCEPT,
    CONTINUE,
    PEER_CONFIDENCE,
    REJECT,
    REVIEW,
    Votes,
    allocate,
    binary_posteriors,
    dawid_skene,
    decide,
    em_accuracy,
    fuse_boxes,
    gold_accuracy,
    own_confusions,
    peer_counts,
    spammer_score,
    vote_accuracies,
    vote_agreement,
)
from labeling.consensus.decisions import decision_codes
from labeling.consensus.dynamic import ConfidenceTable as Table
from labeling.consensus.dynamic import fit_confidence_table
from labeling.models import (
    Box,
    Candidate,
    Category,
    ConfidenceTable,
    ConsensusRun,
    GoldAnswer,
    MicroTask,
    ObjectBox,
    TaskItem,
    User,
    Vote,
    WorkerProfile,
)
from labeling.services.worker_coins import peer_counts_by_worker, peer_record_add, worker_coins

log = logging.getLogger(__name__)

YES, NO = "yes", "no"
PAUSE_SPAMMER = (
    "Your answers agree with the other workers' no more than chance would; "
    "a curator will look at your record."
)
PAUSE_DISAGREES = (
    "Your answers disagree with the consensus more often than they agree; "
    "a curator will look at your record."
)

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
    accuracy = {}
    for worker_id in ids:
        em, seen, correct = known.get(worker_id, (None, 0, 0))
        accuracy[worker_id] = float(em) if em is not None else float(gold_accuracy(correct, seen))
    return accuracy


def _tables(category_ids: set[int]) -> dict[int, Table]:
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

    items: np.ndarray
    workers: np.ndarray
    answers: np.ndarray
    accuracies: np.ndarray


def _live_votes(ids: list[int]) -> LiveVotes:
    """The candidates' counted label votes, each weighted by its voter's live coins (a yes by
    his sensitivity against his specificity, a no the other way round)."""
    votes = list(
        Vote.objects.filter(
            candidate_id__in=ids, question="label", counted=True, answer__in=[YES, NO]
        ).values_list("candidate_id", "worker_id", "answer")
    )
    index = {pk: i for i, pk in enumerate(ids)}
    coins = worker_coins(worker for _, worker, _ in votes)
    workers = np.array([w for _, w, _ in votes], dtype=np.int64)
    answers = np.array([a == YES for _, _, a in votes], dtype=np.int64)
    sens = np.array([coins[w][0] for w in workers.tolist()], dtype=np.float64)
    spec = np.array([coins[w][1] for w in workers.tolist()], dtype=np.float64)
    return LiveVotes(
        items=np.array([index[c] for c, _, _ in votes], dtype=np.int64),
        workers=workers,
        answers=answers,
        accuracies=vote_accuracies(answers, sens, spec),
    )


def _decisions(candidates: list[Candidate]) -> tuple[dict[int, Decision], LiveVotes]:
    """Posterior and decision code per candidate, from its counted yes/no label votes, and the
    votes they came from."""
    ids = [c.pk for c in candidates]
    index = {pk: i for i, pk in enumerate(ids)}
    live = _live_votes(ids)
    posterior = binary_posteriors(
        live.items, live.answers, live.accuracies, len(ids), settings.CROWDNET_CONSENSUS_PRIOR
    )
    cast = np.array([c.votes_cast for c in candidates], dtype=np.int64)
    codes, priority = allocate(
        posterior,
        cast,
        threshold=settings.CROWDNET_CONSENSUS_THRESHOLD,
        cap=settings.CROWDNET_CONSENSUS_VOTE_CAP,
    )
    tables = _tables({c.category_id for c in candidates})
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


def _state_fields(candidate: Candidate, decision: Decision, now) -> dict[str, object]:
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
    if state == Candidate.State.ACCEPTED and candidate.box_state == "none":
        fields["box_state"] = "draw"  # boxes are drawn only on accepted images
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
    decided = []
    for i, candidate in enumerate(candidates):
        fields = _state_fields(candidate, decisions[candidate.pk], now)
        if fields.get("state", Candidate.State.OPEN) != Candidate.State.OPEN:
            decided.append(i)
        Candidate.objects.filter(pk=candidate.pk).update(**fields)
    _learn_from(live, decided, len(candidates))
    return len(decided)


def _learn_from(live: LiveVotes, decided: list[int], n_items: int) -> None:
    """Once the answer commits, credit each voter on the items just decided (sent to review
    included: learning only where the crowd agreed would flatter everyone) with what the item's
    other votes said, where they were confident (PEER_CONFIDENCE), and look again at the
    decisions of any worker whose votes thereby stop carrying evidence."""
    p_others = vote_agreement(
        live.items, live.answers, live.accuracies, n_items, settings.CROWDNET_CONSENSUS_PRIOR
    )
    on = np.isin(live.items, decided) & (np.maximum(p_others, 1 - p_others) >= PEER_CONFIDENCE)
    if not on.any():
        return
    ids, workers = np.unique(live.workers[on], return_inverse=True)
    counts = peer_counts_by_worker(
        ids, peer_counts(workers, live.answers[on], p_others[on], len(ids))
    )
    transaction.on_commit(lambda: _peer_learn(counts))


def _peer_learn(counts: dict[int, tuple[float, float, float, float]]) -> None:
    for worker_id in peer_record_add(counts):
        worker_decisions_reopen(worker_id=worker_id)


def worker_decisions_reopen(*, worker_id: int) -> int:
    """Decide again, with everyone's coins as they stand now, the crowd's decisions this worker
    voted on (a curator's and control items untouched): one that no longer holds goes back to
    open waiting for one more vote, or to its new decision; returns how many changed."""
    voted = Vote.objects.filter(
        worker_id=worker_id, question="label", counted=True, answer__in=[YES, NO]
    ).values("candidate_id")
    changed = 0
    with transaction.atomic():
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
        decisions, _ = _decisions(candidates)
        now = timezone.now()
        for candidate in candidates:
            decision = decisions[candidate.pk]
            state = STATE_OF_CODE[decision.code]
            fields: dict[str, object] = {"posterior": decision.posterior}
            if state != candidate.state:
                changed += 1
                p = decision.posterior
                fields.update(state=state, confidence=max(p, 1 - p), priority=decision.priority)
                fields["decided_at"] = None if state == Candidate.State.OPEN else now
                if state == Candidate.State.OPEN:
                    fields["votes_needed"] = max(candidate.votes_needed, candidate.votes_cast + 1)
                if state == Candidate.State.ACCEPTED and candidate.box_state == "none":
                    fields["box_state"] = "draw"  # boxes are drawn only on accepted images
            Candidate.objects.filter(pk=candidate.pk).update(**fields)
    return changed


def box_accepted(box: Box) -> bool:
    """Whether a box's verification votes, weighted by each checker's reliability, say it is
    tight around one object (posterior above one half)."""
    votes = list(
        Vote.objects.filter(
            box=box, question="box", counted=True, answer__in=[YES, NO]
        ).values_list("worker_id", "answer")
    )
    if not votes:
        return False
    accuracy = worker_accuracies(worker for worker, _ in votes)
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
        if accepted is None:
            candidate.override, candidate.override_by = None, None
            candidate.state = Candidate.State.OPEN
            candidate.votes_needed = max(candidate.votes_needed, candidate.votes_cast + 1)
            candidate.decided_at = None
        else:
            candidate.override, candidate.override_by = accepted, by
            candidate.state = Candidate.State.ACCEPTED if accepted else Candidate.State.REJECTED
            candidate.confidence, candidate.decided_at = 1.0, now
            if accepted and candidate.box_state == "none":
                candidate.box_state = "draw"
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
    return candidate


# --- re-aggregation -------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelVotes:
    """Every yes/no label vote that moves consensus, as index arrays, with the id maps."""

    votes: Votes
    candidate_ids: np.ndarray
    worker_ids: np.ndarray
    gold_items: np.ndarray
    gold_labels: np.ndarray


def label_votes() -> LabelVotes:
    """Counted label votes plus every answer to a gold item (their truth is known, so they
    teach the model each worker's confusion), as arrays."""
    rows = np.array(
        list(
            Vote.objects.filter(question="label", answer__in=[YES, NO])
            .filter(Q(counted=True) | Q(is_gold=True))
            .values_list("candidate_id", "worker_id", "answer")
            .order_by()
            .iterator(chunk_size=20_000)
        ),
        dtype=object,
    ).reshape(-1, 3)
    candidate_ids, items = np.unique(rows[:, 0].astype(np.int64), return_inverse=True)
    worker_ids, workers = np.unique(rows[:, 1].astype(np.int64), return_inverse=True)
    labels = (rows[:, 2] == YES).astype(np.int64)
    gold = dict(
        GoldAnswer.objects.filter(candidate_id__in=candidate_ids.tolist()).values_list(
            "candidate_id", "answer"
        )
    )
    gold_ids = np.array(sorted(gold), dtype=np.int64)
    return LabelVotes(
        votes=Votes.from_arrays(
            items,
            workers,
            labels,
            n_items=len(candidate_ids),
            n_workers=len(worker_ids),
            n_classes=2,
        ),
        candidate_ids=candidate_ids,
        worker_ids=worker_ids,
        gold_items=np.searchsorted(candidate_ids, gold_ids),
        gold_labels=np.array([int(gold[g]) for g in gold_ids.tolist()], dtype=np.int64),
    )


def _warm_start(worker_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Last run's worker matrices and class priors, for the workers that have them (the
    others start from a Beta(2, 1) worker: right two times in three)."""
    last = ConsensusRun.objects.filter(status=ConsensusRun.Status.DONE).first()
    stored = dict(
        WorkerProfile.objects.filter(
            user_id__in=worker_ids.tolist(), confusion__isnull=False
        ).values_list("user_id", "confusion")
    )
    if last is None or not last.class_priors or not stored:
        return None, None
    default = [[2 / 3, 1 / 3], [1 / 3, 2 / 3]]
    confusions = np.array([stored.get(int(w), default) for w in worker_ids], dtype=np.float64)
    return confusions, np.array(last.class_priors, dtype=np.float64)


class Seen(NamedTuple):
    """A candidate as re-aggregation read it, before the votes: it writes only while the row
    still looks like this, so a vote, a live decision or a curator's hand since then stands."""

    votes_cast: int
    votes_needed: int
    state: str
    override: bool | None
    posterior: float


def _candidates_seen() -> dict[int, Seen]:
    """Every candidate with counted votes, by id, as it stands now (read before the votes)."""
    rows = (
        Candidate.objects.filter(votes_cast__gt=0)
        .values_list("id", "votes_cast", "votes_needed", "state", "override", "posterior")
        .order_by()
        .iterator(chunk_size=20_000)
    )
    return {pk: Seen(*rest) for pk, *rest in rows}


def _new_state(seen: Seen, posterior: float, code: int) -> dict[str, object] | None:
    """What re-aggregation changes on one candidate (``code`` from decision_codes), or None
    when nothing changes."""
    fields: dict[str, object] = {}
    if abs(seen.posterior - posterior) > 1e-6:
        fields["posterior"] = posterior
    if seen.override is None and seen.votes_cast >= seen.votes_needed:
        state = STATE_OF_CODE[code]
        if state != seen.state:
            fields["state"] = state
            fields["confidence"] = max(posterior, 1 - posterior)
            if state == Candidate.State.OPEN:
                fields["votes_needed"] = seen.votes_cast + 1
            if state == Candidate.State.ACCEPTED:  # boxes are drawn only on accepted images
                none = Candidate.BoxState.NONE
                fields["box_state"] = Case(
                    When(box_state=none, then=Value(Candidate.BoxState.DRAW)),
                    default=F("box_state"),
                )
    return fields or None


def _candidate_write(pk: int, seen: Seen, posterior: float, code: int, now: datetime) -> bool:
    """Write one candidate's new posterior (and state) while its row is still as seen and, for a
    new state, nobody overrode it or made it a control item meanwhile; True when its state
    changed."""
    fields = _new_state(seen, posterior, code)
    if fields is None:
        return False
    unchanged = Q(pk=pk, votes_cast=seen.votes_cast, state=seen.state)
    if "state" in fields:
        decided = fields["state"] in (Candidate.State.ACCEPTED, Candidate.State.REJECTED)
        fields["decided_at"] = now if decided else None
        unchanged &= Q(override__isnull=True, votes_needed=seen.votes_needed)
        unchanged &= ~Exists(GoldAnswer.objects.filter(candidate_id=OuterRef("pk")))
    updated = Candidate.objects.filter(unchanged).update(**fields)
    return bool(updated) and "state" in fields


def _apply_posteriors(data: LabelVotes, posteriors: np.ndarray, seen: dict[int, Seen]) -> int:
    """Write changed posteriors and states of the candidates ``seen`` before the votes were
    read; one that changed since (a vote, a live decision, a curator) is left alone: the live
    path has it. Returns how many changed state."""
    p_yes = dict(zip(data.candidate_ids.tolist(), posteriors[:, 1].tolist(), strict=True))
    gold = set(data.candidate_ids[data.gold_items].tolist())
    ids = [pk for pk in p_yes if pk not in gold and pk in seen]
    now = timezone.now()
    changed = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        codes = decision_codes(
            [p_yes[pk] for pk in chunk],
            [seen[pk].votes_cast for pk in chunk],
            threshold=settings.CROWDNET_CONSENSUS_THRESHOLD,
            cap=settings.CROWDNET_CONSENSUS_VOTE_CAP,
        )
        with transaction.atomic():
            for pk, code in zip(chunk, codes.tolist(), strict=True):
                changed += _candidate_write(pk, seen[pk], p_yes[pk], code, now)
    return changed


def model_gate_reason(spammer: float, accuracy: float) -> str:
    """Why the model's view of a worker calls for a pause ("" when it doesn't)."""
    if spammer < settings.CROWDNET_GATE_SPAMMER_SCORE:
        return PAUSE_SPAMMER
    if accuracy < settings.CROWDNET_GATE_EM_MIN_ACCURACY:
        return PAUSE_DISAGREES
    return ""


def class_evidence(data: LabelVotes, posteriors: np.ndarray) -> np.ndarray:
    """(workers, classes): how many of each worker's votes fell, in expectation, on items of
    each true class. A confusion row learned from a handful of items says little."""
    workers = len(data.worker_ids)
    return np.stack(
        [
            np.bincount(
                data.votes.worker, weights=posteriors[data.votes.item, k], minlength=workers
            )
            for k in range(posteriors.shape[1])
        ],
        axis=1,
    )


def _apply_workers(
    data: LabelVotes, confusions: np.ndarray, priors: np.ndarray, posteriors: np.ndarray
) -> None:
    """Write each worker's matrix, accuracy, spammer score and vote count, the only columns this
    run owns (one UPDATE per worker, no lock held between them, so counters and pauses that
    answers, gates and curators write meanwhile stand); pause workers who answer like a coin
    (spammer score) or against the crowd (accuracy below the gate), once they have answered
    enough for the model to know them: enough votes, and enough on items of every class (on a
    mostly-positive pool an honest worker's "no" row rests on few items early on, and looks
    like a spammer's).

    The stored matrix is the model's, shrunk toward the crowd (a newcomer reads like an average
    worker); a worker the model knows is scored and gated on his own votes alone, so that prior
    cannot make an always-yes worker look like the crowd on the rows he answered."""
    cast = np.bincount(data.votes.worker, minlength=len(data.worker_ids))
    known = (cast >= settings.CROWDNET_GATE_SPAMMER_MIN_VOTES) & (
        class_evidence(data, posteriors).min(axis=1) >= settings.CROWDNET_GATE_SPAMMER_MIN_PER_CLASS
    )
    scored = np.where(known[:, None, None], own_confusions(data.votes, posteriors), confusions)
    accuracy = em_accuracy(scored, priors)
    spam = spammer_score(scored)
    worker_ids = data.worker_ids.tolist()
    have = set(
        WorkerProfile.objects.filter(user_id__in=worker_ids).values_list("user_id", flat=True)
    )
    WorkerProfile.objects.bulk_create(
        [WorkerProfile(user_id=w) for w in worker_ids if w not in have], ignore_conflicts=True
    )
    now = timezone.now()
    for i, worker_id in enumerate(worker_ids):
        WorkerProfile.objects.filter(user_id=worker_id).update(
            em_accuracy=float(accuracy[i]),
            spammer_score=float(spam[i]),
            confusion=np.round(confusions[i], 6).tolist(),
            label_votes=int(cast[i]),
        )
        reason = model_gate_reason(spam[i], accuracy[i]) if known[i] else ""
        if reason:
            detail = (
                f"Dawid-Skene after {int(cast[i])} label votes: spammer score {spam[i]:.3f}, "
                f"accuracy {accuracy[i]:.3f}."
            )
            _model_pause(worker_id, reason, detail, now)


def _model_pause(worker_id: int, reason: str, detail: str, now: datetime) -> None:
    """Pause a worker the model caught, unless a gate or a curator paused them first (their
    reason and curator-facing detail stand); the worker's open leases go back to the pool."""
    with transaction.atomic():
        if WorkerProfile.objects.filter(user_id=worker_id, paused=False).update(
            paused=True, pause_reason=reason, pause_detail=detail, paused_at=now
        ):
            TaskItem.objects.filter(
                task__worker_id=worker_id, task__status=MicroTask.Status.LEASED
            ).update(leased_until=now)


RUN_LOCK = "crowdnet:consensus-run"


def consensus_reaggregate(*, trigger: str = "schedule", by: User | None = None) -> ConsensusRun:
    """Re-run Dawid-Skene over every label vote, warm-started from the last run's worker
    matrices, then update candidates (overrides and gold untouched), worker scores and the
    review queue. Writes a ConsensusRun with what it did; safe to run again at any time. One
    run at a time: while another is going, returns that one and does nothing."""
    if not cache.add(RUN_LOCK, 1, timeout=3600):
        running = ConsensusRun.objects.filter(status=ConsensusRun.Status.RUNNING).first()
        if running is not None:
            return running
    try:
        return _reaggregate(trigger, by)
    finally:
        cache.delete(RUN_LOCK)


def _reaggregate(trigger: str, by: User | None) -> ConsensusRun:
    run = ConsensusRun.objects.create(trigger=trigger, requested_by=by)
    started = time.perf_counter()
    try:
        seen = _candidates_seen()  # before the votes: what changes after is the live path's
        data = label_votes()
        if data.votes.n_votes == 0:
            run.status, run.finished_at = ConsensusRun.Status.DONE, timezone.now()
            run.save()
            return run
        init_confusions, init_priors = _warm_start(data.worker_ids)
        result = dawid_skene(
            data.votes,
            gold=(data.gold_items, data.gold_labels),
            smoothing=settings.CROWDNET_CONSENSUS_SMOOTHING,
            init_confusions=init_confusions,
            init_priors=init_priors,
        )
        run.changed = _apply_posteriors(data, result.posteriors, seen)
        _apply_workers(data, result.confusions, result.class_priors, result.posteriors)
        run.items, run.votes = data.votes.n_items, data.votes.n_votes
        run.workers, run.iterations = data.votes.n_workers, result.iterations
        run.warm_start = init_confusions is not None
        run.log_likelihood = result.log_likelihood
        run.class_priors = result.class_priors.tolist()
        run.status = ConsensusRun.Status.DONE
    except Exception as error:
        log.exception("consensus run %s failed", run.pk)
        run.status, run.error = ConsensusRun.Status.FAILED, f"{type(error).__name__}: {error}"
    run.finished_at = timezone.now()
    run.seconds = time.perf_counter() - started
    run.save()
    return run


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
    curator has settled; the strongest disagreement first."""
    margin = settings.CROWDNET_REVIEW_MODEL_MARGIN if margin is None else margin
    accepted, rejected = Candidate.State.ACCEPTED, Candidate.State.REJECTED
    decided_as = Case(
        When(state=accepted, then=Value(1.0)), default=Value(0.0), output_field=FloatField()
    )
    return (
        Candidate.objects.filter(override__isnull=True)
        .filter(Q(state=accepted, model_p__lte=margin) | Q(state=rejected, model_p__gte=1 - margin))
        .annotate(gap=Abs(F("model_p") - decided_as))
        .order_by("-gap", "id")
    )


# --- ImageNet's confidence tables -----------------------------------------------------------

MIN_CALIBRATION_ITEMS = 20


def calibration_sample_mark(*, category: Category, size: int, votes: int, seed: int = 0) -> int:
    """Ask for ``votes`` votes on ``size`` random open candidates of the category (no decision
    is taken before an item has the votes it waits for), so a table can be fitted from them;
    returns how many were marked."""
    ids = list(
        Candidate.objects.filter(
            category=category, state=Candidate.State.OPEN, gold__isnull=True
        ).values_list("id", flat=True)
    )
    chosen = np.random.default_rng(seed).permutation(ids)[:size].tolist()
    return Candidate.objects.filter(pk__in=chosen).update(
        votes_needed=votes, priority=F("priority") + 1
    )


def confidence_table_fit(*, category: Category, cap: int) -> ConfidenceTable:
    """Fit the category's table from its candidates with at least ``cap`` counted yes/no votes
    (gold left out) and store it; ValueError saying what to do when there are too few."""
    tallies = list(
        Candidate.objects.filter(category=category, gold__isnull=True)
        .alias(counted=F("yes_votes") + F("no_votes"))
        .filter(counted__gte=cap)
        .values_list("yes_votes", "no_votes")
    )
    if len(tallies) < MIN_CALIBRATION_ITEMS:
        raise ValueError(
            f"Only {len(tallies)} candidates of {category.name} have {cap} or more votes; "
            f"at least {MIN_CALIBRATION_ITEMS} are needed. Mark a calibration sample and let "
            "the crowd answer it first."
        )
    yes, no = (np.array(column, dtype=np.int64) for column in zip(*tallies, strict=True))
    fitted = fit_confidence_table(yes, no, cap=cap, smoothing=settings.CROWDNET_CONSENSUS_SMOOTHING)
    table = [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in fitted.table]
    stored, _ = ConfidenceTable.objects.update_or_create(
        category=category,
        defaults={
            "cap": cap,
            "table": table,
            "prior": fitted.prior,
            "calibration_items": len(tallies),
        },
    )
    return stored

"""The Dawid-Skene re-aggregation over every label vote (beat runs it every
CROWDNET_CONSENSUS_EVERY_SECONDS, curators on demand): posteriors and decisions for every
candidate, each worker's matrix, accuracy and spammer score, and the model's pause. It writes
only the columns it owns, so answers, gates and curators working meanwhile lose nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from jobs.beat import JobBeat
from jobs.kinds import CONSENSUS
from jobs.services import (
    Claim,
    JobCancelled,
    JobLost,
    job_claim,
    job_create_claimed,
    job_finish,
)
from labeling.consensus import (
    Votes,
    dawid_skene,
    em_accuracy,
    own_confusions,
    spammer_score,
)
from labeling.consensus.decisions import decision_codes
from labeling.models import (
    Candidate,
    ConsensusRun,
    GoldAnswer,
    User,
    Vote,
    WorkerProfile,
)
from labeling.services.consensus import NO, STATE_OF_CODE, YES
from labeling.services.leases import leases_release

log = logging.getLogger(__name__)

PAUSE_SPAMMER = (
    "Your answers agree with the other workers' no more than chance would; "
    "a curator will look at your record."
)
PAUSE_DISAGREES = (
    "Your answers disagree with the consensus more often than they agree; "
    "a curator will look at your record."
)


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
            leases_release(worker_id, now)


def consensus_reaggregate(
    *, trigger: str = ConsensusRun.Trigger.SCHEDULE, by: User | None = None
) -> ConsensusRun:
    """Re-run Dawid-Skene over every label vote, warm-started from the last run's worker
    matrices, then update candidates (overrides and gold untouched), worker scores and the
    review queue. Writes a ConsensusRun with what it did; safe to run again at any time. One
    run at a time (a partial unique index on running runs): while another is going, returns
    that one and does nothing. A run whose worker died is requeued or failed by the sweep."""
    claim = job_create_claimed(CONSENSUS, trigger=trigger, requested_by=by)
    if claim is None:
        running = ConsensusRun.objects.filter(status=ConsensusRun.Status.RUNNING).first()
        if running is not None:
            return running
        claim = job_create_claimed(CONSENSUS, trigger=trigger, requested_by=by)
        if claim is None:  # another started and ended meanwhile: that one is as fresh
            return ConsensusRun.objects.first()  # type: ignore[return-value]
    return _reaggregate(claim)


def consensus_run_execute(run_id: int) -> ConsensusRun:
    """Run a queued (requeued by the sweep) consensus run; one that is not queued is left as it
    is, and one that cannot start because another is running is cancelled: that one does the
    same work on fresher votes."""
    claim = job_claim(CONSENSUS, run_id)
    if claim is None:
        ConsensusRun.objects.filter(pk=run_id, status=ConsensusRun.Status.QUEUED).update(
            status=ConsensusRun.Status.CANCELLED,
            finished_at=timezone.now(),
            error="Another consensus run was going; that one took its place.",
        )
        return ConsensusRun.objects.get(pk=run_id)
    return _reaggregate(claim)


def _enqueue(run_id: int) -> None:
    from labeling.tasks import consensus_run_execute

    consensus_run_execute.delay(run_id)


def _reaggregate(claim: Claim) -> ConsensusRun:
    started = time.perf_counter()
    outcome: dict[str, object] = {}
    with JobBeat(claim) as beat:
        try:
            outcome = _aggregate(beat)
        except JobLost:
            log.warning("consensus run %s was taken from this worker; it stops", claim.pk)
        except JobCancelled:
            outcome = {"status": ConsensusRun.Status.CANCELLED}
        except Exception as error:
            log.exception("consensus run %s failed", claim.pk)
            outcome = {
                "status": ConsensusRun.Status.FAILED,
                "error": f"{type(error).__name__}: {error}",
            }
    if outcome:
        job_finish(claim, seconds=time.perf_counter() - started, **outcome)  # type: ignore[arg-type]
    return ConsensusRun.objects.get(pk=claim.pk)


def _aggregate(beat: JobBeat) -> dict[str, object]:
    """The work of one run; returns its outcome's fields."""
    seen = _candidates_seen()  # before the votes: what changes after is the live path's
    data = label_votes()
    beat.check()
    if data.votes.n_votes == 0:
        return {"status": ConsensusRun.Status.DONE}
    init_confusions, init_priors = _warm_start(data.worker_ids)
    result = dawid_skene(
        data.votes,
        gold=(data.gold_items, data.gold_labels),
        smoothing=settings.CROWDNET_CONSENSUS_SMOOTHING,
        init_confusions=init_confusions,
        init_priors=init_priors,
    )
    beat.check()
    changed = _apply_posteriors(data, result.posteriors, seen)
    _apply_workers(data, result.confusions, result.class_priors, result.posteriors)
    return {
        "status": ConsensusRun.Status.DONE,
        "changed": changed,
        "items": data.votes.n_items,
        "votes": data.votes.n_votes,
        "workers": data.votes.n_workers,
        "iterations": result.iterations,
        "warm_start": init_confusions is not None,
        "log_likelihood": result.log_likelihood,
        "class_priors": result.class_priors.tolist(),
    }

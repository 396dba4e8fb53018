"""Training's Celery tasks. run_train goes to the training queue (one worker, concurrency 1,
prefetch 1, acks late); the housekeeping runs on the default queue, so it works while the
training worker is busy."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from training.models import EvaluationSet
from training.services import evaluation, execute, promotion, runs, scoring


@shared_task(
    name="training.tasks.run_train",
    acks_late=True,
    soft_time_limit=settings.CROWDNET_TRAIN_TIME_LIMIT,
    time_limit=settings.CROWDNET_TRAIN_TIME_LIMIT + 60,
)
def run_train(run_id: int) -> str:
    """Train one queued run; a run that is not queued any more is left as it is."""
    return execute.run_execute(run_id).status


@shared_task(name="training.tasks.training_auto")
def training_auto() -> str:
    """Snapshot and queue a run when enough new labels arrived."""
    return runs.training_auto().message


@shared_task(name="training.tasks.runs_fail_stale")
def runs_fail_stale() -> list[int]:
    """Retry once, then fail, runs whose worker stopped beating."""
    return runs.runs_fail_stale()


@shared_task(name="training.tasks.candidates_score", acks_late=True)
def candidates_score() -> int:
    """Score the candidates with the current model: active learning on the open ones, and
    the model's side of the review queue on the decided ones."""
    return scoring.candidates_score()


@shared_task(name="training.tasks.evaluation_rescore", acks_late=True)
def evaluation_rescore(evaluation_id: int) -> int:
    """Score the current model and the recent runs on a new evaluation version (missing
    scores only: safe to run twice)."""
    found = EvaluationSet.objects.filter(pk=evaluation_id).first()
    return evaluation.evaluation_rescore(found) if found is not None else 0


@shared_task(name="training.tasks.evaluations_catch_up", acks_late=True)
def evaluations_catch_up() -> int:
    """Write the scores a lost re-scoring message or a killed worker left missing, and decide
    the newest run a killed worker left undecided."""
    written = evaluation.evaluations_catch_up()
    promotion.promotions_catch_up()
    return written

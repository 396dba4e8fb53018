"""Which run is the current model: both models on the same images, at decision time.

Every finished run, whatever started it, is compared with the current model on the current
evaluation set of its categories (or, where there is none yet, on the validation images of the
run's own version, which both models then predict). It is promoted when its top-1 error is lower
by at least CROWDNET_PROMOTE_MARGIN points and McNemar's exact one-sided test on the images where
exactly one of the two is right gives p <= CROWDNET_PROMOTE_ALPHA. Every decision, and every
promotion by hand, is written down as a Promotion with its reason in words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from datasets.models import DatasetItem
from labeling.models import User
from training.ml.metrics import discordant, mcnemar_one_sided
from training.models import EvaluationSet, Promotion, TrainingRun
from training.services.checkpoints import run_checkpoint_exists
from training.services.evaluation import evaluation_for_run, evaluation_score, run_answers
from training.services.runs import RunInvalid, current_model, run_promote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """Two models on the same images; errors are fractions, b and c counts of images."""

    evaluation: EvaluationSet | None
    images: int
    candidate_error: float
    incumbent_error: float
    only_candidate_right: int
    only_incumbent_right: int
    where: str  # the images, in words

    @property
    def p_value(self) -> float:
        return mcnemar_one_sided(self.only_candidate_right, self.only_incumbent_right)


def _on_set(
    candidate: TrainingRun, incumbent: TrainingRun, evaluation: EvaluationSet
) -> Comparison:
    ours, theirs = evaluation_score(candidate, evaluation), evaluation_score(incumbent, evaluation)
    b, c = discordant(ours.top1_correct, theirs.top1_correct)
    return Comparison(
        evaluation,
        ours.images,
        ours.top1_error,
        theirs.top1_error,
        b,
        c,
        f"the {ours.images} images of evaluation set v{evaluation.number}",
    )


def _on_validation(candidate: TrainingRun, incumbent: TrainingRun) -> Comparison:
    """Both models on the candidate version's validation images, predicted now."""
    classes = candidate.version.classes
    rows = [
        (name, classes[label]["id"])
        for name, label in DatasetItem.objects.filter(
            version=candidate.version, split=DatasetItem.Split.VAL
        )
        .order_by("id")
        .values_list("image__train_copy", "label")
    ]
    ours, theirs = run_answers(candidate, rows)[0], run_answers(incumbent, rows)[0]
    b, c = discordant(ours, theirs)
    n = max(len(rows), 1)
    return Comparison(
        None,
        len(rows),
        ours.count("0") / n,
        theirs.count("0") / n,
        b,
        c,
        f"the {len(rows)} validation images of version {candidate.version.number} (no "
        "evaluation set for these categories yet: both models predicted them now)",
    )


def comparison_make(candidate: TrainingRun, incumbent: TrainingRun) -> Comparison:
    """The two models on the current evaluation set of the candidate's categories (freezing
    the first one when it can), else on the candidate version's validation images."""
    evaluation = evaluation_for_run(candidate)
    if evaluation is not None:
        return _on_set(candidate, incumbent, evaluation)
    return _on_validation(candidate, incumbent)


def _figures(comparison: Comparison) -> str:
    return (
        f"top-1 error {100 * comparison.candidate_error:.2f} % against the current model's "
        f"{100 * comparison.incumbent_error:.2f} % on {comparison.where}; right where the other "
        f"is wrong on {comparison.only_candidate_right} images against "
        f"{comparison.only_incumbent_right}, McNemar one-sided p = {comparison.p_value:.3g}"
    )


def _record(
    candidate: TrainingRun,
    incumbent: TrainingRun | None,
    comparison: Comparison | None,
    *,
    promoted: bool,
    reason: str,
    by: User | None = None,
) -> Promotion:
    fields = {}
    if comparison is not None:
        fields = {
            "evaluation": comparison.evaluation,
            "candidate_top1_error": comparison.candidate_error,
            "incumbent_top1_error": comparison.incumbent_error,
            "only_candidate_right": comparison.only_candidate_right,
            "only_incumbent_right": comparison.only_incumbent_right,
            "p_value": comparison.p_value,
        }
    return Promotion.objects.create(
        candidate=candidate,
        incumbent=incumbent,
        by=by,
        promoted=promoted,
        margin=settings.CROWDNET_PROMOTE_MARGIN,
        reason=reason,
        **fields,
    )


def promotion_decide(*, run: TrainingRun) -> Promotion:
    """Decide whether a finished run becomes the current model; promotes it when it wins
    (margin and McNemar, see the module) and writes the Promotion either way."""
    if run.status != TrainingRun.Status.DONE or not run.checkpoint:
        raise RunInvalid("run", "Only a finished run with a checkpoint can be promoted.")
    incumbent = current_model()
    if incumbent is None:
        try:
            evaluation = evaluation_for_run(run)
            score = evaluation_score(run, evaluation) if evaluation is not None else None
        except Exception:  # a score is for the record: with nothing current, the run goes in
            log.exception("run %s: not scored on an evaluation set", run.pk)
            evaluation, score = None, None
        run_promote(run)
        return Promotion.objects.create(
            candidate=run,
            evaluation=evaluation,
            promoted=True,
            candidate_top1_error=score.top1_error if score else None,
            margin=settings.CROWDNET_PROMOTE_MARGIN,
            reason=f"No model was current: run {run.pk} becomes the current model.",
        )
    if incumbent.pk == run.pk:
        return _record(run, incumbent, None, promoted=True, reason="Already the current model.")
    if not run_is_readable(incumbent):
        run_promote(run)
        reason = (
            f"The current model (run {incumbent.pk}) cannot predict: its checkpoint is gone; "
            f"run {run.pk} replaces it."
        )
        return _record(run, incumbent, None, promoted=True, reason=reason)
    try:
        comparison = comparison_make(run, incumbent)
    except Exception as error:
        log.exception("run %s: no comparison with the current model", run.pk)
        reason = (
            f"Not promoted: the two models could not be compared ({type(error).__name__}: {error})."
        )
        return _record(run, incumbent, None, promoted=False, reason=reason)
    margin, alpha = settings.CROWDNET_PROMOTE_MARGIN, settings.CROWDNET_PROMOTE_ALPHA
    # percentage points; rounded so that a gain equal to the margin is not lost to float noise
    gain = round(100 * (comparison.incumbent_error - comparison.candidate_error), 9)
    promoted = gain > 0 and gain >= margin and comparison.p_value <= alpha
    if promoted:
        verdict = f"Promoted: {gain:.2f} points better (margin {margin:g}) with p <= {alpha:g}"
    elif gain <= 0:
        verdict = "Not promoted: no better than the current model"
    elif gain < margin:
        verdict = f"Not promoted: {gain:.2f} points better, short of the {margin:g}-point margin"
    else:
        verdict = f"Not promoted: {gain:.2f} points better, but p > {alpha:g} (it may be chance)"
    if promoted:
        run_promote(run)
    return _record(
        run, incumbent, comparison, promoted=promoted, reason=f"{verdict}; {_figures(comparison)}."
    )


def run_is_readable(run: TrainingRun) -> bool:
    """Whether the run's checkpoint is still in the checkpoint store."""
    return run_checkpoint_exists(run)


def promotion_by_hand(*, run: TrainingRun, by: User | None) -> Promotion:
    """A curator makes a finished run the current model; writes the Promotion, with the two
    models' paired figures on the current evaluation set where there is one. Raises
    RunInvalid for a run that is not finished."""
    if run.status != TrainingRun.Status.DONE or not run.checkpoint:
        raise RunInvalid("run", "Only a finished run with a checkpoint can be promoted.")
    incumbent = current_model()
    who = by.get_username() if by is not None else "a curator"
    comparison, note = None, ""
    if incumbent is not None and incumbent.pk != run.pk:
        try:
            evaluation = evaluation_for_run(run)
            if evaluation is not None:
                comparison = _on_set(run, incumbent, evaluation)
                note = f"; {_figures(comparison)}"
        except Exception as error:  # figures are for the record; the curator decides
            log.warning(
                "run %s: no paired figures for the promotion by hand", run.pk, exc_info=True
            )
            note = f"; no paired figures ({type(error).__name__}: {error})"
    run_promote(run)
    return _record(
        run, incumbent, comparison, promoted=True, by=by, reason=f"Promoted by hand by {who}{note}."
    )


def promotions_catch_up() -> Promotion | None:
    """Decide the newest finished run that has no automatic decision: its worker was killed
    between finishing it and deciding (run_execute decides right after the finish). Only the
    newest, so an old run is never weighed again after newer ones were."""
    if not settings.CROWDNET_TRAIN_AUTO_PROMOTE:
        return None
    newest = (
        TrainingRun.objects.filter(status=TrainingRun.Status.DONE)
        .exclude(checkpoint="")
        .order_by("-finished_at", "-id")
        .first()
    )
    if newest is None or newest.promotions.filter(by__isnull=True).exists():
        return None
    return promotion_decide(run=newest)

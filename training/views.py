"""Curators' training pages: dataset versions and runs, one run's curves, and a prediction.
Each POST validates a form, calls one service, and redirects or shows what went wrong."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from datasets.models import DatasetVersion
from datasets.services.versions import DatasetTooSmall, dataset_snapshot
from labeling.ingest.validation import ImageRejected
from labeling.views import bad_request, curator_required, posted_id
from training.api import CHECKPOINT_UNREADABLE, RunDetailSerializer, upload_read
from training.ml.catalog import BACKBONES, CheckpointCorrupt
from training.models import TrainingRun
from training.services.dashboards import (
    HEAT_LEVELS,
    architecture_summary,
    model_error_history,
    newest_scores,
    run_detail,
    run_evaluation,
)
from training.services.promotion import promotion_by_hand
from training.services.runs import (
    ACTIVE,
    NoCurrentModel,
    RunBusy,
    RunInvalid,
    current_model,
    run_cancel,
    run_create,
)

log = logging.getLogger(__name__)


class VersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"v{obj.number}: {obj.images} images in {len(obj.classes)} classes"


class RunStartForm(forms.Form):
    """A run's settings; the service checks them again and has the last word."""

    version = VersionChoiceField(
        queryset=DatasetVersion.objects.all(),
        to_field_name="number",
        empty_label=None,
        label="Dataset version",
    )
    backbone = forms.ChoiceField()
    weights = forms.CharField(
        max_length=300,
        initial="imagenet",
        label="Starting weights",
        help_text=(
            "imagenet, lite0, random[:seed], run:<id> (a finished run's checkpoint) or "
            "checkpoint:<file in the checkpoint store>[#sha256]"
        ),
    )
    mode = forms.ChoiceField(choices=TrainingRun.Mode.choices)
    epochs = forms.IntegerField(min_value=1, max_value=500)
    image_size = forms.IntegerField(
        min_value=16, max_value=1024, label="Image size", help_text="Pixels, square."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(BACKBONES)
        backbone: Any = self.fields["backbone"]
        backbone.choices = [(name, name) for name in names]
        if settings.CROWDNET_TRAIN_AUTO_BACKBONE in names:
            backbone.initial = settings.CROWDNET_TRAIN_AUTO_BACKBONE
        self.fields["epochs"].initial = settings.CROWDNET_TRAIN_EPOCHS
        self.fields["image_size"].initial = settings.CROWDNET_TRAIN_IMAGE_SIZE


class PredictForm(forms.Form):
    image = forms.FileField(widget=forms.FileInput(attrs={"accept": "image/*"}))


def _run_start(request: HttpRequest, form: RunStartForm) -> TrainingRun | None:
    """The queued run, or None with the service's complaint added to the form."""
    data = form.cleaned_data
    try:
        return run_create(
            version=data["version"],
            backbone=data["backbone"],
            weights=data["weights"],
            mode=data["mode"],
            params={"epochs": data["epochs"], "image_size": data["image_size"]},
            by=request.user,
        )
    except RunInvalid as error:
        form.add_error(error.field if error.field in form.fields else None, error.message)
    except RunBusy as busy:
        form.add_error(None, str(busy))
    return None


def _snapshot(request: HttpRequest) -> HttpResponse:
    try:
        version = dataset_snapshot(by=request.user)
    except DatasetTooSmall as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Dataset version {version.number}: {version.images} images in "
            f"{len(version.classes)} classes.",
        )
    return redirect("curate-training")


def _run_action(request: HttpRequest, action: str) -> HttpResponse:
    run_id = posted_id(request, "run")
    if run_id is None:
        return bad_request(request, f"The run to {action} must be given by its number.")
    run = get_object_or_404(TrainingRun, pk=run_id)
    if action == "cancel":
        run = run_cancel(run)
        if run.status == TrainingRun.Status.CANCELLED:
            messages.success(request, f"Run {run.pk} cancelled.")
        elif run.cancel_requested:
            messages.success(request, f"Run {run.pk} stops after its current batch.")
        else:
            messages.error(request, f"Run {run.pk} is {run.status}; there is nothing to cancel.")
    else:
        try:
            promotion_by_hand(run=run, by=request.user)
        except RunInvalid as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Run {run.pk} is now the current model.")
    if request.POST.get("back") == "run":
        return redirect("curate-training-run", pk=run.pk)
    return redirect("curate-training")


@curator_required
@require_http_methods(["GET", "POST"])
def curate_training(request: HttpRequest) -> HttpResponse:
    """The current model, dataset versions, a form to start a run, and every run."""
    action = request.POST.get("action")
    form = RunStartForm()
    if action == "start":
        form = RunStartForm(request.POST)
        if form.is_valid():
            run = _run_start(request, form)
            if run is not None:
                messages.success(request, f"Run {run.pk} queued.")
                return redirect("curate-training-run", pk=run.pk)
    elif action == "snapshot":
        return _snapshot(request)
    elif action in ("cancel", "promote"):
        return _run_action(request, action)
    runs = TrainingRun.objects.select_related("version").prefetch_related(newest_scores())
    current = current_model()
    context = {
        "form": form,
        "current": current,
        "current_version": current.version if current else None,
        "versions": DatasetVersion.objects.all()[:5],
        "page": Paginator(runs, 25).get_page(request.GET.get("page")),
        "active": ACTIVE,
    }
    return render(request, "training/curate_training.html", context)


@curator_required
@require_GET
def curate_training_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: settings and outcome, learning curves that follow a live run (its script polls
    the run's API), per-class error, the confusion matrix as a heat map (drawn by the script
    from the run's JSON: a 100-class matrix is 10,000 cells), the images the model gets most
    wrong, the layer table, its scores on the evaluation sets and its promotion decisions."""
    run = run_detail(pk)
    names = [c["name"] for c in run.version.classes]
    val_counts = run.version.counts.get("val", [])
    per_class = [
        {"name": name, "val": val, "error": error}
        for name, val, error in zip(names, val_counts, run.per_class_error or [], strict=False)
    ]
    architecture = run.architecture  # deferred by run_detail (the API leaves it out): read now
    context = {
        "run": run,
        "run_data": RunDetailSerializer(run).data,
        "epochs": list(run.epochs.all()),
        "live": run.status in ACTIVE,
        "names": names,
        "per_class": per_class,
        "heat_levels": range(HEAT_LEVELS + 1),
        "mistakes": [
            {"mistake": m, "label": _name(names, m.label), "predicted": _name(names, m.predicted)}
            for m in run.mistakes.all()
        ],
        "architecture": architecture_summary(architecture) if architecture else None,
        "evaluation": run_evaluation(run),
    }
    return render(request, "training/curate_training_run.html", context)


def _name(names: list[str], index: int) -> str:
    return names[index] if index < len(names) else f"class {index}"


@curator_required
@require_GET
def curate_model_error(request: HttpRequest) -> HttpResponse:
    """Top-1 and top-5 error of every finished run against date and labelled-set size."""
    return render(request, "training/model_error.html", {"history": model_error_history()})


@curator_required
@require_http_methods(["GET", "POST"])
def curate_predict(request: HttpRequest) -> HttpResponse:
    """Upload an image and see the current model's top-5 classes with their probabilities."""
    form = PredictForm(request.POST, request.FILES) if request.method == "POST" else PredictForm()
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            # Scoring needs torch, which only this request loads (14 s cold): the rest of the
            # web process never imports it.
            from training.services.scoring import predict

            run, predictions = predict(upload_read(form.cleaned_data["image"]))
        except ImageRejected as rejected:
            form.add_error("image", rejected.message[:1].upper() + rejected.message[1:] + ".")
        except NoCurrentModel as error:
            form.add_error(None, str(error))
        except (CheckpointCorrupt, OSError):
            log.exception("the current model's checkpoint cannot be read")
            form.add_error(None, CHECKPOINT_UNREADABLE)
        else:
            context |= {
                "run": run,
                "predictions": predictions,
                "file_name": form.cleaned_data["image"].name,
            }
    context["current"] = context.get("run") or current_model()
    return render(request, "training/curate_predict.html", context)

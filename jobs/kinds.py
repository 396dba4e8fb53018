"""The four job kinds, in one table: which model holds their rows, how a message is sent,
how long a heartbeat may be silent before the sweep calls the worker dead, how many attempts a
job gets, and where its output file goes (so the sweep can remove a dead attempt's part).

Functions are named by dotted path and looked up when used, so this module imports no app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class JobKind:
    """How the shared job pattern applies to one model."""

    name: str
    model_label: str  # "app_label.Model", a subclass of jobs.models.Job
    enqueue: str  # dotted path of f(pk) that sends the job's message
    stale_setting: str  # seconds without a heartbeat after which the worker is called dead
    attempts_setting: str = "CROWDNET_JOBS_MAX_ATTEMPTS"
    output: str = ""  # dotted path of f(job) -> StoredFile | None: the final file
    final_fields: dict[str, Any] = field(default_factory=dict)  # also written on any end

    @property
    def model(self) -> Any:
        return apps.get_model(self.model_label)

    @property
    def stale_seconds(self) -> int:
        return int(getattr(settings, self.stale_setting))

    @property
    def max_attempts(self) -> int:
        return int(getattr(settings, self.attempts_setting))

    def send(self, pk: int) -> None:
        import_string(self.enqueue)(pk)


IMPORT = JobKind(
    name="import",
    model_label="labeling.ImportJob",
    enqueue="labeling.services.imports._enqueue",
    stale_setting="CROWDNET_IMPORT_STALE_SECONDS",
)
EXPORT = JobKind(
    name="export",
    model_label="datasets.DatasetExport",
    enqueue="datasets.services.exports._enqueue",
    stale_setting="CROWDNET_EXPORT_STALE_SECONDS",
    output="datasets.services.exports.export_output",
)
TRAINING = JobKind(
    name="training",
    model_label="training.TrainingRun",
    enqueue="training.services.runs._enqueue",
    stale_setting="CROWDNET_TRAIN_HEARTBEAT_STALE_SECONDS",
    attempts_setting="CROWDNET_TRAIN_MAX_ATTEMPTS",
    output="training.services.execute.checkpoint_output",
    final_fields={"active": None},  # frees the one-run slot
)
CONSENSUS = JobKind(
    name="consensus",
    model_label="labeling.ConsensusRun",
    enqueue="labeling.services.reaggregation._enqueue",
    stale_setting="CROWDNET_CONSENSUS_STALE_SECONDS",
)

KINDS = (IMPORT, EXPORT, TRAINING, CONSENSUS)

"""The crowd side's data. No logic in save() and no signals: writes live in labeling.services."""

from labeling.models.catalog import (
    Candidate,
    Category,
    Image,
    ImageArrival,
    ImageSource,
    ImportJob,
    Invitation,
    User,
)
from labeling.models.crowd import (
    PEER_PENDING,
    QUESTION_OF_KIND,
    Box,
    ConfidenceTable,
    ConsensusRun,
    GoldAnswer,
    MicroTask,
    ObjectBox,
    TaskItem,
    TaskKind,
    Vote,
    WorkerProfile,
)

__all__ = [
    "PEER_PENDING",
    "QUESTION_OF_KIND",
    "Box",
    "Candidate",
    "Category",
    "ConfidenceTable",
    "ConsensusRun",
    "GoldAnswer",
    "Image",
    "ImageArrival",
    "ImageSource",
    "ImportJob",
    "Invitation",
    "MicroTask",
    "ObjectBox",
    "TaskItem",
    "TaskKind",
    "User",
    "Vote",
    "WorkerProfile",
]

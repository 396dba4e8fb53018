"""Datasets, the thing both the crowd side and the model side use: versions with their items,
and exports. The tables keep the names they had in training and labeling. No logic in save()
and no signals: writes live in datasets.services."""

from datasets.models.exports import DatasetExport
from datasets.models.versions import DatasetItem, DatasetVersion

__all__ = ["DatasetExport", "DatasetItem", "DatasetVersion"]

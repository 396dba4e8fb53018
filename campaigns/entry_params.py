"""The query parameters a marketplace adds to a campaign link, validated strictly. Pure: the
allowed submit origins come in as an argument.

Mechanical Turk's ExternalQuestion adds ``workerId``, ``assignmentId``, ``hitId`` and
``turkSubmitTo``; ids are upper-case letters and digits. Prolific adds ``PROLIFIC_PID``,
``STUDY_ID`` and ``SESSION_ID``, each 24 lower-case hex digits (a MongoDB object id). Anything
else is refused rather than cleaned up: an id is the key to a worker's account here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE"
MTURK_ID = re.compile(r"[A-Z0-9]{10,64}")
PROLIFIC_ID = re.compile(r"[0-9a-f]{24}")
MTURK_SUBMIT_ORIGINS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
EXTERNAL_SUBMIT_PATH = "/mturk/externalSubmit"


class EntryInvalid(ValueError):
    """The link's parameters are missing or malformed; the message says which."""


@dataclass(frozen=True)
class Entry:
    """A validated arrival: ``preview`` is MTurk's preview (no worker, no assignment)."""

    marketplace: str
    worker_id: str = ""
    assignment_id: str = ""
    group_id: str = ""
    submit_to: str = ""
    preview: bool = False


def _id(params: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str:
    value = params.get(name, "")
    if not pattern.fullmatch(value):
        raise EntryInvalid(f"{name} is missing or malformed.")
    return value


def submit_origin(value: str, allowed: Iterable[str]) -> str:
    """The turkSubmitTo origin when it is exactly one of ``allowed`` (scheme and host, no
    path, query or credentials), else EntryInvalid."""
    parts = urlsplit(value)
    origin = f"{parts.scheme}://{parts.netloc}"
    clean = not (parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc)
    if not clean or origin not in set(allowed):
        raise EntryInvalid("turkSubmitTo is not a Mechanical Turk address.")
    return origin


def entry_parse(
    params: Mapping[str, str], marketplace: str, submit_origins: Iterable[str]
) -> Entry:
    """The arrival a campaign link's parameters describe, for the campaign's marketplace."""
    if marketplace == "mturk":
        if params.get("assignmentId") == PREVIEW_ASSIGNMENT:
            return Entry(marketplace, preview=True)
        return Entry(
            marketplace,
            worker_id=_id(params, "workerId", MTURK_ID),
            assignment_id=_id(params, "assignmentId", MTURK_ID),
            group_id=_id(params, "hitId", MTURK_ID),
            submit_to=submit_origin(params.get("turkSubmitTo", ""), submit_origins),
        )
    return Entry(
        marketplace,
        worker_id=_id(params, "PROLIFIC_PID", PROLIFIC_ID),
        assignment_id=_id(params, "SESSION_ID", PROLIFIC_ID),
        group_id=_id(params, "STUDY_ID", PROLIFIC_ID),
    )

"""WordNet-style category ids (``n02123045``) and the slug a category name gets: the one
definition that the model's validator and constraint, the API, the category and annotation
importers and the exports all use.

Pure: no Django, so the annotation readers and the export records can check ids too. The
shape matters beyond looks: exports may name folders after the id, so an id must never hold
a slash, a dot or anything else a path could climb with.
"""

from __future__ import annotations

import re

# \Z, not $: a trailing newline must not pass (both Python and PostgreSQL know \Z)
WNID_PATTERN = r"^n[0-9]{8}\Z"
WNID_MAX_LENGTH = 20
WNID_MESSAGE = "Use a WordNet id such as n02123045."
CATEGORY_NAME_MAX_LENGTH = 200

_WNID = re.compile(WNID_PATTERN)


def is_wnid(value: str) -> bool:
    """True when ``value`` is a WordNet-style id: ``n`` and eight digits, nothing else."""
    return bool(_WNID.fullmatch(value))


def slug_of(name: str) -> str:
    """A category slug from a name: lower case, runs of other characters as one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")[:100] or "unnamed"

"""CSV files in the shapes the marketplaces take for bulk upload (reads only).

- ``mturk-review``: MTurk's batch-results upload (Manage > Review results > Upload CSV) matches
  rows on ``AssignmentId`` and reads ``Approve`` ("x") or ``Reject`` (the reason the worker
  sees); ``HITId`` and ``WorkerId`` are there for people. Submitted assignments not yet
  reviewed are left out: nothing is decided about them.
- ``mturk-bonus``: MTurk takes bonuses only through SendBonus, one call per row: the columns
  are its parameters (``WorkerId``, ``AssignmentId``, ``BonusAmount`` in dollars, ``Reason``,
  ``UniqueRequestToken``: the ledger entry's id, so a re-run sends nothing twice).
- ``prolific-review``: Prolific approves in bulk from a list of participant ids and rejects
  one submission at a time with a reason: ``participant_id``, ``session_id``, ``decision``
  (APPROVE or REJECT) and ``reason``.
- ``prolific-bonus``: Prolific's bulk bonus box takes ``participant_id,amount`` lines, the
  amount in the study's currency with two decimals and no header.
- ``ledger``: every ledger entry, for the curator's own books.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from campaigns.models import Assignment, Campaign, LedgerEntry

EXPORTS = ("mturk-review", "mturk-bonus", "prolific-review", "prolific-bonus", "ledger")


def money(cents: int) -> str:
    """Cents as dollars (or pounds) with two decimals: 125 -> "1.25"."""
    return f"{cents // 100}.{cents % 100:02d}"


def _cell(value: str) -> str:
    """A text cell a spreadsheet won't run as a formula (a campaign name is free text)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


def _csv(header: list[str] | None, rows: Iterable[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def _reviewed(campaign: Campaign) -> Iterable[Assignment]:
    return (
        campaign.assignments.filter(
            state__in=[Assignment.State.APPROVED, Assignment.State.REJECTED]
        )
        .select_related("worker")
        .order_by("id")
    )


def _bonuses(campaign: Campaign) -> Iterable[LedgerEntry]:
    return (
        campaign.ledger.filter(kind=LedgerEntry.Kind.BONUS)
        .select_related("assignment", "worker")
        .order_by("id")
    )


def _approved(assignment: Assignment) -> bool:
    return assignment.state == Assignment.State.APPROVED


def export_csv(campaign: Campaign, name: str) -> str:
    """The named export (one of EXPORTS) of the campaign, as CSV text."""
    if name == "mturk-review":
        return _csv(
            ["AssignmentId", "HITId", "WorkerId", "Approve", "Reject"],
            (
                [a.external_id, a.group_id, a.worker.external_id]
                + (["x", ""] if _approved(a) else ["", a.reject_reason])
                for a in _reviewed(campaign)
            ),
        )
    if name == "mturk-bonus":
        return _csv(
            ["WorkerId", "AssignmentId", "BonusAmount", "Reason", "UniqueRequestToken"],
            (
                [
                    e.worker.external_id,
                    e.assignment.external_id,
                    money(e.amount_cents),
                    f"{campaign.name}: {e.note}",
                    f"crowdnet-{e.pk}",
                ]
                for e in _bonuses(campaign)
            ),
        )
    if name == "prolific-review":
        return _csv(
            ["participant_id", "session_id", "decision", "reason"],
            (
                [a.worker.external_id, a.external_id]
                + (["APPROVE", ""] if _approved(a) else ["REJECT", a.reject_reason])
                for a in _reviewed(campaign)
            ),
        )
    if name == "prolific-bonus":
        return _csv(
            None, ([e.worker.external_id, money(e.amount_cents)] for e in _bonuses(campaign))
        )
    if name == "ledger":
        return _csv(
            [
                "entry",
                "worker",
                "assignment",
                "kind",
                "amount",
                "tasks",
                "accepted_answers",
                "control_seen",
                "control_correct",
                "note",
            ],
            (
                [
                    str(e.pk),
                    e.worker.external_id,
                    e.assignment.external_id,
                    e.kind,
                    money(e.amount_cents),
                    str(e.tasks),
                    str(e.accepted_answers),
                    str(e.control_seen),
                    str(e.control_correct),
                    e.note,
                ]
                for e in campaign.ledger.select_related("assignment", "worker").order_by("id")
            ),
        )
    raise ValueError(f"Unknown export {name!r}; use one of {', '.join(EXPORTS)}.")

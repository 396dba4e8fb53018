"""How a simulated crowd did, read from the database against the truth only the simulator
knows: the crowd's decisions (gold and curators' decisions left out), who is paused, and the
fused boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo.models import DemoTruth
from demo.personas import BAD_KINDS, Persona
from labeling.consensus import iou
from labeling.models import Candidate, ObjectBox, User, WorkerProfile


@dataclass(frozen=True)
class CrowdScore:
    """The crowd's decisions on items with a known truth, and its paused workers, at one
    moment (live, or after a re-aggregation)."""

    decided: int
    correct: int
    accepted: int
    accepted_right: int
    rejected: int
    rejected_wrong: int
    review: int
    still_open: int
    votes_per_decided_item: float
    paused: dict[str, tuple[int, int]]  # per persona kind: (paused, workers)

    @property
    def accuracy(self) -> float | None:
        """Share of decided items whose decision matches the truth."""
        return self.correct / self.decided if self.decided else None

    @property
    def precision(self) -> float | None:
        """Share of accepted items that really show their category."""
        return self.accepted_right / self.accepted if self.accepted else None

    def paused_share(self, bad: bool) -> tuple[int, int]:
        """(paused, workers) over the bad kinds, or over honest workers and confusers."""
        rows = [v for k, v in self.paused.items() if (k in BAD_KINDS) == bad]
        return sum(p for p, _ in rows), sum(n for _, n in rows)

    def lines(self, when: str) -> list[str]:
        """This score as a person reads it; ``when`` names the moment."""

        def share(part: int, whole: int) -> str:
            return f"{part / whole:.3f} ({part}/{whole})" if whole else "n/a (0/0)"

        return [
            f"{when}: label accuracy {share(self.correct, self.decided)} decided items; "
            f"precision of accepted {share(self.accepted_right, self.accepted)}; "
            f"rejections wrong {self.rejected_wrong}/{self.rejected}",
            f"{when}: votes per decided item {self.votes_per_decided_item:.2f}; "
            f"review queue {self.review}; still open {self.still_open}",
            f"{when}: workers paused, by kind: "
            + ", ".join(f"{k} {p}/{n}" for k, (p, n) in sorted(self.paused.items())),
        ]


def crowd_score(personas: list[Persona], workers: list[User]) -> CrowdScore:
    """Score the decisions as they stand against DemoTruth, and count paused workers (the
    profile's ``paused`` flag) per persona kind."""
    rows = list(
        DemoTruth.objects.filter(
            candidate__gold__isnull=True, candidate__override__isnull=True
        ).values_list("is_positive", "candidate__state", "candidate__votes_cast")
    )
    accepted = [p for p, s, _ in rows if s == Candidate.State.ACCEPTED]
    rejected = [p for p, s, _ in rows if s == Candidate.State.REJECTED]
    cast = [v for _, s, v in rows if s in (Candidate.State.ACCEPTED, Candidate.State.REJECTED)]
    paused_ids = set(
        WorkerProfile.objects.filter(user__in=workers, paused=True).values_list(
            "user_id", flat=True
        )
    )
    paused: dict[str, tuple[int, int]] = {}
    for user, persona in zip(workers, personas, strict=True):
        done, total = paused.get(persona.kind, (0, 0))
        paused[persona.kind] = (done + (user.pk in paused_ids), total + 1)
    return CrowdScore(
        decided=len(accepted) + len(rejected),
        correct=sum(accepted) + len(rejected) - sum(rejected),
        accepted=len(accepted),
        accepted_right=sum(accepted),
        rejected=len(rejected),
        rejected_wrong=sum(rejected),
        review=sum(s == Candidate.State.NEEDS_REVIEW for _, s, _ in rows),
        still_open=sum(s == Candidate.State.OPEN for _, s, _ in rows),
        votes_per_decided_item=float(np.mean(cast)) if cast else 0.0,
        paused=paused,
    )


def box_quality() -> tuple[int, float | None]:
    """(true objects, mean IoU of the best fused object for each) over images with both."""
    truths = DemoTruth.objects.exclude(boxes=[]).values_list("candidate_id", "boxes")
    fused: dict[int, list[list[float]]] = {}
    for candidate_id, *coords in ObjectBox.objects.values_list(
        "candidate_id", "x0", "y0", "x1", "y1"
    ):
        fused.setdefault(candidate_id, []).append(coords)
    scores = []
    for candidate_id, boxes in truths:
        if candidate_id not in fused:
            continue
        overlap = iou(np.array(boxes, dtype=np.float64), np.array(fused[candidate_id]))
        scores.extend(overlap.max(axis=1).tolist())
    return len(scores), (float(np.mean(scores)) if scores else None)


@dataclass(frozen=True)
class SimulationReport:
    """What a run did, and how right the crowd came out: ``live`` as the answer path left it
    when the crowd first stopped, before any re-aggregation the simulator asked for;
    ``reaggregated`` after it (None when there was none). ``batch_runs_live`` counts
    re-aggregations that started while the crowd worked (a beat schedule): the live score
    then is not purely live."""

    seconds: float
    answered_tasks: int
    answered_items: int
    tasks_per_second: float
    tasks_by_kind: dict[str, int]
    live: CrowdScore
    reaggregated: CrowdScore | None
    batch_runs_live: int
    box_objects: int
    box_mean_iou: float | None
    errors: list[str]

    @property
    def final(self) -> CrowdScore:
        """The score as the run left things."""
        return self.reaggregated or self.live

    @property
    def decided(self) -> int:
        return self.final.decided

    @property
    def correct(self) -> int:
        return self.final.correct

    @property
    def review(self) -> int:
        return self.final.review

    @property
    def still_open(self) -> int:
        return self.final.still_open

    @property
    def accuracy(self) -> float | None:
        return self.final.accuracy

    @property
    def paused(self) -> dict[str, tuple[int, int]]:
        return self.final.paused

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        box = f"{self.box_mean_iou:.3f}" if self.box_mean_iou is not None else "n/a"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.tasks_by_kind.items())) or "none"
        live = "live, before any re-aggregation"
        if self.batch_runs_live:
            live = f"live ({self.batch_runs_live} scheduled re-aggregations ran meanwhile)"
        lines = [
            f"answered tasks: {self.answered_tasks} ({self.answered_items} items) in "
            f"{self.seconds:.1f} s = {self.tasks_per_second:.1f} tasks/s [{kinds}]",
            *self.live.lines(live),
        ]
        if self.reaggregated is not None:
            lines += self.reaggregated.lines("after re-aggregation")
        return [
            *lines,
            f"boxes: mean IoU of fused objects against the truth: {box} "
            f"({self.box_objects} true objects)",
            f"errors: {len(self.errors)} {self.errors[:3]}",
        ]

"""The crowd simulator: simulated workers drive the real HTTP API, and the outcome is measured
against the truth that only the simulator knows (DemoTruth and gold).

Each simulated worker is a thread with its own token, doing what a browser does: ask for the
next task, spend its time on it, answer. The personas (demo.personas) decide the
answers; this module talks HTTP, looks the truth up, and writes the report.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import urllib3
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image as PILImage
from PIL import ImageDraw
from rest_framework.authtoken.models import Token

from demo.models import DemoTruth
from demo.personas import (
    ItemTruth,
    Persona,
    box_check,
    boxes_draw,
    coverage_check,
    label_answer,
    personas_draw,
)
from demo.services.simulation_scores import (
    CrowdScore,
    SimulationReport,
    box_quality,
    crowd_score,
)
from labeling.consensus import iou
from labeling.models import (
    Candidate,
    Category,
    ConsensusRun,
    MicroTask,
    TaskItem,
    User,
    WorkerProfile,
)
from labeling.services.ingest import images_ingest
from labeling.services.microtasks import gold_mark


@dataclass(frozen=True)
class SimulationConfig:
    url: str
    workers: int = 20
    mix: dict[str, float] = field(default_factory=lambda: {"honest": 1.0})
    accuracy: tuple[float, float] = (0.8, 0.95)
    seconds_per_item: float = 0.5
    seconds: float = 60.0
    max_tasks: int | None = None
    kind: str | None = None
    # empty polls (0.2 s apart) after which a worker leaves, counted only while nobody else
    # has an answer in flight or lands one: an item a slow answer is still deciding may need
    # this worker's vote next
    patience: int = 10
    seed: int = 0
    prefix: str = "sim"
    # enter through this campaign's link (campaigns.simulation) instead of with API tokens
    campaign: str | None = None


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: int = 0
    items: int = 0
    conflicts: int = 0
    empty: int = 0
    in_flight: int = 0
    paused: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)


def _clean_slate() -> dict[str, object]:
    """Every column of a worker profile at its default: counters, control-item record,
    pause, and the model's estimates."""
    return {
        f.name: f.get_default()
        for f in WorkerProfile._meta.concrete_fields
        if not f.primary_key and f.name != "user"
    }


def _slate_clean(user: User) -> None:
    """Reset every profile column and give back the leases still open from an earlier run."""
    now = timezone.now()
    with transaction.atomic():
        WorkerProfile.objects.update_or_create(user=user, defaults=_clean_slate())
        leased = MicroTask.objects.filter(worker=user, status=MicroTask.Status.LEASED)
        TaskItem.objects.filter(task__in=leased).update(leased_until=now)
        leased.update(expires_at=now)


def simulated_workers_create(count: int, prefix: str) -> list[tuple[User, str]]:
    """``count`` worker accounts ``<prefix>-0``... with API tokens (reused when they exist);
    every profile column is reset and leases still open from an earlier run are given back,
    so each run starts from a clean slate (the earlier run's votes stay: they are the
    crowd's)."""
    people = []
    for index in range(count):
        user, created = User.objects.get_or_create(
            username=f"{prefix}-{index}", defaults={"role": User.Role.WORKER}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        _slate_clean(user)
        token, _ = Token.objects.get_or_create(user=user)
        people.append((user, token.key))
    return people


def _campaign_workers(config: SimulationConfig) -> list[tuple[User, str]]:
    """The accounts the campaign link will give the simulated workers, from a clean slate."""
    from campaigns.simulation import campaign_workers_bind  # the campaigns app builds on this

    users = campaign_workers_bind(config.campaign or "", config.workers, config.seed)
    for user in users:
        _slate_clean(user)
    return [(user, "") for user in users]


def truth_lookup(item_uids: list[str]) -> dict[str, ItemTruth]:
    """The truth behind each task item, by the item's opaque id (DemoTruth first, then gold)."""
    items = list(
        TaskItem.objects.filter(uid__in=item_uids).select_related(
            "candidate__category", "candidate__gold"
        )
    )
    truths = {
        t.candidate_id: t
        for t in DemoTruth.objects.filter(candidate_id__in=[i.candidate_id for i in items])
    }
    found = {}
    for item in items:
        candidate = item.candidate
        truth = truths.get(candidate.pk)
        gold = getattr(candidate, "gold", None)
        if truth is not None:
            positive, label, boxes = truth.is_positive, truth.true_label, truth.boxes
        elif gold is not None:
            positive, label, boxes = gold.answer, "", []
        else:
            continue
        found[str(item.uid)] = ItemTruth(
            category=candidate.category.slug,
            is_positive=positive,
            true_label=label,
            is_gold=item.is_gold,
            boxes=boxes,
        )
    return found


def _answers(
    task: dict, truths: dict[str, ItemTruth], persona: Persona, rng: np.random.Generator
) -> list[dict]:
    answers = []
    for item in task["items"]:
        truth = truths.get(item["id"]) or ItemTruth("", bool(rng.random() < 0.5), "")
        if task["kind"] == "grid":
            answers.append({"item": item["id"], "selected": label_answer(persona, truth, rng)})
        elif task["kind"] == "verify":
            yes = label_answer(persona, truth, rng)
            answers.append({"item": item["id"], "answer": "yes" if yes else "no"})
        elif task["kind"] == "draw":
            drawn = boxes_draw(persona, truth, item["width"], item["height"], rng)
            answers.append({"item": item["id"], "boxes": drawn})
        elif task["kind"] == "verify_box":
            yes = box_check(persona, item["box"], truth, rng)
            answers.append({"item": item["id"], "answer": "yes" if yes else "no"})
        else:
            yes = coverage_check(persona, item.get("boxes", []), truth, rng)
            answers.append({"item": item["id"], "answer": "yes" if yes else "no"})
    return answers


def _campaign_visitor(
    config: SimulationConfig, http: urllib3.PoolManager, index: int, deadline: float
) -> Any:
    """With ``config.campaign``: the worker's session, entered through the campaign link."""
    if config.campaign is None:
        return None
    from campaigns.simulation import CampaignVisitor

    visitor = CampaignVisitor(http, config.url, config.campaign, config.seed, index)
    if not visitor.enter(deadline):
        raise urllib3.exceptions.HTTPError(f"campaign {config.campaign}: entry refused")
    return visitor


def _worker_loop(
    config: SimulationConfig,
    index: int,
    persona: Persona,
    token: str,
    deadline: float,
    tally: _Tally,
) -> None:
    """One simulated worker until the deadline, the task budget, a pause, or an empty pool."""
    http = urllib3.PoolManager(maxsize=1, retries=False, timeout=60)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    rng = np.random.default_rng(config.seed * 1000 + index)
    query = f"?kind={config.kind}" if config.kind else ""
    next_url = f"{config.url}/api/tasks/next/{query}"
    empties = 0
    quiet_since = -1
    holding = False
    try:
        visitor = _campaign_visitor(config, http, index, deadline)
        if visitor is not None:
            headers, next_url = visitor.headers, visitor.next_url
        while time.monotonic() < deadline:
            with tally.lock:
                if config.max_tasks is not None and tally.answered >= config.max_tasks:
                    return
            response = http.request("GET", next_url, headers=headers)
            finished = response.headers.get("Crowdnet-Empty-Reason") == "finished"
            if visitor is not None and response.status == 204 and finished:
                if not visitor.finish(deadline):  # claim the code, take the next assignment
                    return
                headers, next_url = visitor.headers, visitor.next_url
                continue
            if response.status == 204:
                with tally.lock:
                    tally.empty += 1
                    busy = tally.in_flight > 0 or tally.answered != quiet_since
                    quiet_since = tally.answered
                empties = 0 if busy else empties + 1
                if empties >= config.patience:
                    return
                time.sleep(0.2)
                continue
            if response.status == 403:
                with tally.lock:
                    tally.paused.add(index)
                return
            if response.status != 200:
                with tally.lock:
                    tally.errors.append(f"next {response.status}: {response.data[:200]!r}")
                time.sleep(0.5)
                continue
            empties = 0
            with tally.lock:
                tally.in_flight += 1
                holding = True
            task = json.loads(response.data)
            truths = truth_lookup([item["id"] for item in task["items"]])
            answers = _answers(task, truths, persona, rng)
            time.sleep(persona.seconds_per_item * len(task["items"]))
            body = json.dumps({"answers": answers, "client_token": uuid.uuid4().hex})
            response = http.request(
                "POST", f"{config.url}/api/tasks/{task['id']}/answer/", body=body, headers=headers
            )
            with tally.lock:
                tally.in_flight -= 1
                holding = False
                if response.status == 201:
                    tally.answered += 1
                    tally.items += len(task["items"])
                    tally.by_kind[task["kind"]] += 1
                elif response.status == 409:
                    tally.conflicts += 1
                elif response.status == 403:
                    tally.paused.add(index)
                    return
                else:
                    tally.errors.append(f"answer {response.status}: {response.data[:200]!r}")
    except urllib3.exceptions.HTTPError as error:
        with tally.lock:
            tally.errors.append(f"{config.url}: {error}")
    finally:
        if holding:
            with tally.lock:
                tally.in_flight -= 1
        close_old_connections()
        connection.close()


def simulation_report(
    tally: _Tally,
    seconds: float,
    *,
    live: CrowdScore,
    reaggregated: CrowdScore | None,
    batch_runs_live: int,
) -> SimulationReport:
    """The run's report: the tally, the scores, and the fused boxes as they stand."""
    objects, mean_iou = box_quality()
    return SimulationReport(
        seconds=seconds,
        answered_tasks=tally.answered,
        answered_items=tally.items,
        tasks_per_second=tally.answered / seconds if seconds else 0.0,
        tasks_by_kind=dict(tally.by_kind),
        live=live,
        reaggregated=reaggregated,
        batch_runs_live=batch_runs_live,
        box_objects=objects,
        box_mean_iou=mean_iou,
        errors=tally.errors,
    )


def server_check(url: str) -> str | None:
    """None when ``url`` answers HTTP, else what went wrong, in words."""
    try:
        urllib3.request("GET", f"{url}/accounts/login/", timeout=10, retries=False)
    except urllib3.exceptions.HTTPError as error:
        return f"Can't reach {url} ({type(error).__name__})"
    return None


def _crowd_round(
    config: SimulationConfig,
    personas: list[Persona],
    people: list[tuple[User, str]],
    tally: _Tally,
    deadline: float,
    progress: Callable[[int], None] | None,
) -> None:
    """Every worker not yet paused works until the crowd goes quiet or the deadline."""
    threads = [
        threading.Thread(
            target=_worker_loop, args=(config, i, persona, token, deadline, tally), daemon=True
        )
        for i, (persona, (_, token)) in enumerate(zip(personas, people, strict=True))
        if i not in tally.paused
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.5)
        if progress is not None:
            progress(tally.answered)


def _label_work_left() -> bool:
    return Candidate.objects.filter(
        state=Candidate.State.OPEN, votes_cast__lt=F("votes_needed")
    ).exists()


def simulation_run(
    config: SimulationConfig,
    *,
    after: Callable[[], object] | None = None,
    progress: Callable[[int], None] | None = None,
    rounds: int = 3,
) -> SimulationReport:
    """Run the simulated crowd against ``config.url``. The report scores the decisions live,
    as the answer path left them when the crowd first stopped; with ``after`` (a
    re-aggregation, say), run each time the crowd stops, it scores them again at the end. A
    re-aggregation can reopen items (those decided on a spammer's votes): while it did, time
    is left and fewer than ``rounds`` rounds ran, the crowd comes back for them. Writes worker
    accounts."""
    rng = np.random.default_rng(config.seed)
    personas = personas_draw(
        config.workers,
        config.mix,
        accuracy=config.accuracy,
        seconds_per_item=config.seconds_per_item,
        rng=rng,
    )
    if config.campaign:
        people = _campaign_workers(config)
    else:
        people = simulated_workers_create(config.workers, config.prefix)
    workers = [user for user, _ in people]
    tally = _Tally()
    started_at = timezone.now()
    deadline = time.monotonic() + config.seconds
    seconds = 0.0  # the crowd's time, without the re-aggregations
    live: CrowdScore | None = None
    batch_runs_live = 0
    for _ in range(rounds):
        started = time.monotonic()
        _crowd_round(config, personas, people, tally, deadline, progress)
        seconds += time.monotonic() - started
        if live is None:  # as the answer path left things, before any re-aggregation
            live = crowd_score(personas, workers)
            batch_runs_live = ConsensusRun.objects.filter(started_at__gte=started_at).count()
        if after is not None:
            after()
        budget_left = config.max_tasks is None or tally.answered < config.max_tasks
        if not (after and budget_left and time.monotonic() < deadline and _label_work_left()):
            break
    if live is None:  # no round ran
        live = crowd_score(personas, workers)
    reaggregated = crowd_score(personas, workers) if after is not None else None
    return simulation_report(
        tally, seconds, live=live, reaggregated=reaggregated, batch_runs_live=batch_runs_live
    )


def box_category_generate(*, count: int, seed: int = 0, gold_share: float = 0.1) -> Category:
    """A category "rectangle" of generated images with one to three filled rectangles each
    (and a third with none), their true boxes in DemoTruth: the draw task's known truth."""
    rng = np.random.default_rng(seed)
    category, _ = Category.objects.get_or_create(
        slug="rectangle",
        defaults={"name": "rectangle", "definition": "a filled, axis-aligned rectangle"},
    )
    files, truths = [], []
    for index in range(count):
        width, height = 160, 120
        background = tuple(int(v) for v in rng.integers(0, 60, 3))
        picture = PILImage.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(picture)
        boxes: list[list[float]] = []
        wanted = 0 if index % 3 == 2 else int(rng.integers(1, 4))
        for _ in range(wanted * 5):
            if len(boxes) == wanted:
                break
            w, h = rng.integers(24, 60), rng.integers(20, 50)
            x0, y0 = rng.integers(0, width - w), rng.integers(0, height - h)
            box = [float(x0), float(y0), float(x0 + w), float(y0 + h)]
            if boxes and iou(np.array([box]), np.array(boxes)).max() > 0:
                continue
            boxes.append(box)
        for y in range(0, height, 4):  # faint noise rows, so no two images are near-duplicates
            draw.line([(0, y), (width, y)], fill=tuple(int(v) for v in rng.integers(0, 40, 3)))
        for box in boxes:
            x0, y0, x1, y1 = (int(v) for v in box)
            colour = tuple(int(v) for v in rng.integers(120, 256, 3))
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colour)
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        files.append((f"rectangle-{seed}-{index:05d}.png", buffer.getvalue()))
        truths.append(boxes)
    report = images_ingest(files=files, category=category, source="folder", uploader=None)
    uids = [item.image_uid for item in report.items]  # a near-duplicate keeps no truth
    candidates = dict(
        Candidate.objects.filter(
            category=category, image__uid__in=[u for u in uids if u]
        ).values_list("image__uid", "id")
    )
    with transaction.atomic():
        for uid, boxes in zip(uids, truths, strict=True):
            if uid is None:
                continue
            DemoTruth.objects.update_or_create(
                candidate_id=candidates[uuid.UUID(str(uid))],
                defaults={
                    "is_positive": bool(boxes),
                    "true_label": "rectangle" if boxes else "none",
                    "boxes": boxes,
                },
            )
    ids = sorted(candidates.values())
    for candidate_id in rng.choice(ids, size=max(1, round(len(ids) * gold_share)), replace=False):
        truth = DemoTruth.objects.get(candidate_id=int(candidate_id))
        gold_mark(candidate=Candidate.objects.get(pk=int(candidate_id)), answer=truth.is_positive)
    return category

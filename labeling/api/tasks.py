"""The worker API: next micro-task, and answers to it."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.image_urls import image_url_sign
from labeling.api.task_serializers import (
    CLIENT_TOKEN_LENGTH,
    TASK_SCHEMA,
    AnsweredSerializer,
    AnswerSerializer,
)
from labeling.api.throttling import (
    AddressRateThrottle,
    BatchedThrottlesMixin,
    ScopedRateThrottle,
)
from labeling.models import Box, MicroTask, TaskItem, TaskKind, User
from labeling.services.answers import (
    AnswerInvalid,
    TaskConflict,
    TaskNotFound,
    WorkerPaused,
    answer_submit,
)
from labeling.services.microtasks import EXAMPLES, task_assign, task_examples
from labeling.services.task_pool import task_empty_reason

PROMPTS = {
    TaskKind.VERIFY: "Is there a {name} in this image?",
    TaskKind.GRID: "Select all images with a {name}.",
    TaskKind.DRAW: "Draw a box around each {name}.",
    TaskKind.VERIFY_BOX: "Is this box tight around one {name}?",
    TaskKind.COVERAGE: "Is every {name} boxed?",
}


class TaskThrottle(ScopedRateThrottle):
    """Per worker."""


class TaskIPThrottle(AddressRateThrottle):
    """Per client address, whoever is signed in."""

    scope = "tasks_ip"


def _item_body(item: TaskItem, kind: str, worker_id: int) -> dict[str, Any]:
    """What a worker sees of one item: an opaque id and image URL, the same for gold or not.
    The URL is signed for the worker, so API clients without a session can load it."""
    image = item.candidate.image
    body: dict[str, Any] = {
        "id": str(item.uid),
        "image_url": image_url_sign(reverse("task-item-image", args=[item.uid]), worker_id),
        "width": image.width,
        "height": image.height,
    }
    if item.box is not None:
        body["box"] = [item.box.x0, item.box.y0, item.box.x1, item.box.y1]
    if kind == TaskKind.COVERAGE:
        body["boxes"] = [[b.x0, b.y0, b.x1, b.y1] for b in item.candidate.boxes.all()]
    return body


def task_body(task: MicroTask) -> dict[str, Any]:
    """The task as the worker's browser gets it: never gold flags, votes or model output. A
    task fresh from the PostgreSQL verify lease carries its items and examples (``served``)."""
    served = getattr(task, "served", None)
    if served is not None:
        items, example_uids = served.items, served.example_image_uids
    else:
        items_query = task.items.select_related("candidate__image", "box")
        if task.kind == TaskKind.COVERAGE:  # only coverage shows the accepted boxes
            items_query = items_query.prefetch_related(
                Prefetch("candidate__boxes", queryset=Box.objects.filter(state=Box.State.ACCEPTED))
            )
        items = list(items_query)
        examples = (
            task_examples(task.category_id)
            .exclude(image_id__in=[item.candidate.image_id for item in items])
            .select_related("image")[:EXAMPLES]
        )
        example_uids = [c.image.uid for c in examples]
    return {
        "id": str(task.uid),
        "kind": task.kind,
        "prompt": PROMPTS[task.kind].format(name=task.category.name),
        "category": {
            "id": task.category_id,
            "name": task.category.name,
            "definition": task.category.definition,
        },
        "examples": [
            image_url_sign(reverse("image-file", args=[uid, "thumb"]), task.worker_id)
            for uid in example_uids
        ],
        "items": [_item_body(item, task.kind, task.worker_id) for item in items],
        "expires_at": task.expires_at.isoformat(),
    }


ANY_KIND = "any"
"""What ``?next=`` (and ``?kind=``) take for a task of whichever kind comes first."""

NEXT_PARAM = "next"
"""The answer endpoint's query parameter asking for the next task in the same response."""


def kind_param(request: Request, name: str) -> str | None:
    """The task kind a query parameter asks for: None when absent, empty or ``any``; a
    ValidationError (400) naming the parameter for anything but a kind."""
    value = request.query_params.get(name) or None
    if value is None or value == ANY_KIND:
        return None
    if value not in TaskKind.values:
        raise ValidationError(
            {name: [f"Unknown kind; use one of {', '.join(TaskKind.values)}, or {ANY_KIND}."]}
        )
    return value


def next_offer(worker: User, kind: str | None) -> dict[str, Any]:
    """The next task for ``worker`` (task_assign) as an answer's ``next`` field carries it:
    ``{"status": "task", "task": ...}``, ``{"status": "empty", "why": ...}`` (an EmptyReason)
    or ``{"status": "paused", "reason": ...}``; the next-task endpoint answers 200, 204 or 403
    from the same."""
    try:
        task = task_assign(worker=worker, kind=kind)
    except WorkerPaused as paused:
        return {"status": "paused", "reason": paused.reason}
    if task is None:
        return {"status": "empty", "why": task_empty_reason(kind=kind).value}
    return {"status": "task", "task": task_body(task)}


EMPTY_REASON_HEADER = "Crowdnet-Empty-Reason"
"""The header of a 204 from the next-task endpoint that says why there is no task
(labeling.services.task_pool.EmptyReason)."""


class NextTaskView(BatchedThrottlesMixin, APIView):
    """The next micro-task for the signed-in worker; 204 when there is nothing to do."""

    throttle_classes = [TaskThrottle, TaskIPThrottle]
    throttle_scope = "tasks"

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", enum=[ANY_KIND, *(k.value for k in TaskKind)], required=False)
        ],
        responses={
            200: TASK_SCHEMA,
            204: OpenApiResponse(
                description="Nothing to do right now; the Crowdnet-Empty-Reason header says "
                "why: no-work (no task of this kind exists yet) or done (this worker has done, "
                "or others hold, all there is)."
            ),
            403: OpenApiResponse(description="The worker is paused; the reason is given."),
        },
    )
    def get(self, request: Request) -> Response:
        offer = next_offer(request.user, kind_param(request, "kind"))
        if offer["status"] == "paused":
            raise PermissionDenied(f"Your account is paused: {offer['reason']}")
        if offer["status"] == "empty":
            return Response(
                status=status.HTTP_204_NO_CONTENT, headers={EMPTY_REASON_HEADER: offer["why"]}
            )
        return Response(offer["task"])


def answer_fields(data: Any) -> tuple[Any, str]:
    """The answers (as sent: the service checks them item by item) and the client token of an
    answer body, as AnswerSerializer validates them. A JSON object whose answers are a list of
    objects and whose token is a plain ASCII string of at most 64 characters once stripped is
    taken as it is, as the serializer would take it; anything else goes through the serializer,
    for its exact errors (ValidationError, 400)."""
    if isinstance(data, dict):
        answers, token = data.get("answers"), data.get("client_token", "")
        if (
            isinstance(answers, list)
            and all(type(answer) is dict for answer in answers)
            and type(token) is str
            and token.isascii()
            and "\x00" not in token
            and len(token.strip()) <= CLIENT_TOKEN_LENGTH
        ):
            return answers, token.strip()
    serializer = AnswerSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return data.get("answers"), serializer.validated_data.get("client_token", "")


class AnswerView(BatchedThrottlesMixin, APIView):
    """Answer a leased task. Retrying with the same client_token returns the first result."""

    throttle_classes = [TaskThrottle, TaskIPThrottle]
    throttle_scope = "tasks"

    @extend_schema(
        request=AnswerSerializer,
        parameters=[
            OpenApiParameter(
                NEXT_PARAM,
                enum=[ANY_KIND, *(k.value for k in TaskKind)],
                required=False,
                description="Lease the worker's next task (of this kind, or any) once the "
                "answer is in, and return it as ``next``: one request per task instead of "
                "two. A paused worker or an empty pool is said there, not as an error.",
            )
        ],
        responses={
            201: AnsweredSerializer,
            400: OpenApiResponse(description="Malformed answer; the field in error is named."),
            403: OpenApiResponse(description="The worker is paused."),
            404: OpenApiResponse(description="No such task for this worker."),
            409: OpenApiResponse(description="The lease expired or the task was answered."),
        },
    )
    def post(self, request: Request, uid: str) -> Response:
        wants_next = NEXT_PARAM in request.query_params
        next_kind = kind_param(request, NEXT_PARAM)  # checked before anything is written
        answers, client_token = answer_fields(request.data)
        try:
            submitted = answer_submit(
                worker=request.user, task_uid=uid, answers=answers, client_token=client_token
            )
        except TaskNotFound:
            raise NotFound("No such task.") from None
        except TaskConflict as conflict:
            return Response({"detail": conflict.message}, status=status.HTTP_409_CONFLICT)
        except WorkerPaused as paused:
            raise PermissionDenied(f"Your account is paused: {paused.reason}") from None
        except AnswerInvalid as invalid:
            raise ValidationError({invalid.field: [invalid.message]}) from None
        body = submitted.body
        if wants_next:  # the answer is committed first: the next lease can't take it back
            body = {**body, "next": next_offer(request.user, next_kind)}
        return Response(body, status=status.HTTP_201_CREATED)

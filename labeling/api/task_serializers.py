"""What the worker API sends and takes, one shape per task kind, so that the schema says
exactly what a task looks like and what its answer must be (labeling.crowd.answers checks it).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from labeling.crowd.answers import CHOICES
from labeling.models import TaskKind


def box_field(**kwargs: Any) -> serializers.ListField:
    """One box: [x0, y0, x1, y1] in image pixels, origin top left."""
    kwargs.setdefault("help_text", "[x0, y0, x1, y1] in image pixels, origin top left.")
    return serializers.ListField(
        child=serializers.FloatField(), min_length=4, max_length=4, **kwargs
    )


# --- the task ------------------------------------------------------------------------------


class CategoryBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    definition = serializers.CharField()


class TaskItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Answer with this id as 'item'.")
    image_url = serializers.CharField(
        help_text="The image, signed for you: load it as it is, no credentials needed, "
        "until the link expires (CROWDNET_IMAGE_URL_SECONDS)."
    )
    width = serializers.IntegerField(help_text="Pixels.")
    height = serializers.IntegerField(help_text="Pixels.")


class BoxCheckItemSerializer(TaskItemSerializer):
    box = box_field(help_text="The box to check, [x0, y0, x1, y1] in image pixels.")


class CoverageItemSerializer(TaskItemSerializer):
    boxes = serializers.ListField(
        child=box_field(), help_text="The accepted boxes, each [x0, y0, x1, y1] in pixels."
    )


class TaskSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    prompt = serializers.CharField()
    category = CategoryBriefSerializer()
    examples = serializers.ListField(
        child=serializers.CharField(), help_text="Thumbnails of accepted images; signed URLs."
    )
    items = TaskItemSerializer(many=True)
    expires_at = serializers.DateTimeField(help_text="Answer before this; then it is 409.")


class VerifyTaskSerializer(TaskSerializer):
    """One image: is the category in it? Answer with VerifyAnswer."""


class GridTaskSerializer(TaskSerializer):
    """Several images: select those that show the category. Answer with GridAnswer."""


class DrawTaskSerializer(TaskSerializer):
    """One image: draw a box around each instance. Answer with DrawAnswer."""


class VerifyBoxTaskSerializer(TaskSerializer):
    """One box on one image: is it tight around one instance? Answer with YesNoAnswer."""

    items = BoxCheckItemSerializer(many=True)


class CoverageTaskSerializer(TaskSerializer):
    """One image with its accepted boxes: is every instance boxed? Answer with YesNoAnswer."""

    items = CoverageItemSerializer(many=True)


TASK_OF_KIND = {
    TaskKind.VERIFY: VerifyTaskSerializer,
    TaskKind.GRID: GridTaskSerializer,
    TaskKind.DRAW: DrawTaskSerializer,
    TaskKind.VERIFY_BOX: VerifyBoxTaskSerializer,
    TaskKind.COVERAGE: CoverageTaskSerializer,
}
TASK_SCHEMA = PolymorphicProxySerializer(
    component_name="Task",
    serializers={str(kind): serializer for kind, serializer in TASK_OF_KIND.items()},
    resource_type_field_name="kind",
)


# --- the answer ----------------------------------------------------------------------------


class VerifyAnswerSerializer(serializers.Serializer):
    """A verify task's answer for one item."""

    item = serializers.UUIDField(help_text="The item's id.")
    answer = serializers.ChoiceField(choices=CHOICES["verify"])


class YesNoAnswerSerializer(serializers.Serializer):
    """A verify_box or coverage task's answer for one item."""

    item = serializers.UUIDField(help_text="The item's id.")
    answer = serializers.ChoiceField(choices=CHOICES["verify_box"])


class GridAnswerSerializer(serializers.Serializer):
    """A grid task's answer for one cell: true when it shows the category."""

    item = serializers.UUIDField(help_text="The item's id.")
    selected = serializers.BooleanField()


class DrawAnswerSerializer(serializers.Serializer):
    """A draw task's answer: the boxes drawn; an empty list means none present."""

    item = serializers.UUIDField(help_text="The item's id.")
    boxes = serializers.ListField(child=box_field(), help_text="Empty: none present.")


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="ItemAnswer",
        serializers=[
            VerifyAnswerSerializer,
            YesNoAnswerSerializer,
            GridAnswerSerializer,
            DrawAnswerSerializer,
        ],
        resource_type_field_name=None,
        many=True,
    )
)
class AnswersField(serializers.ListField):
    """One answer per item of the task, all of the task kind's shape (checked by the
    service, which names the field in error)."""

    child = serializers.DictField()


CLIENT_TOKEN_LENGTH = 64


class AnswerSerializer(serializers.Serializer):
    answers = AnswersField(
        help_text="One entry per item: verify {item, answer: yes|no|unsure}; verify_box and "
        "coverage {item, answer: yes|no}; grid {item, selected}; draw {item, boxes}."
    )
    client_token = serializers.CharField(
        max_length=CLIENT_TOKEN_LENGTH,
        required=False,
        allow_blank=True,
        help_text="Any string unique to this submission: a retry with it returns the first "
        "result and writes nothing again.",
    )


class StatsSerializer(serializers.Serializer):
    answered_tasks = serializers.IntegerField()
    answered_items = serializers.IntegerField()
    streak = serializers.IntegerField()
    paused = serializers.BooleanField()
    pause_reason = serializers.CharField()


@extend_schema_field(TASK_SCHEMA)
class _TaskField(serializers.JSONField):
    """A task as GET /api/tasks/next/ returns it."""


class NextOfferSerializer(serializers.Serializer):
    """The worker's next task, leased by the answer that carries it."""

    status = serializers.ChoiceField(
        choices=["task", "empty", "paused"],
        help_text="task: here it is; empty: nothing to do (why says why, as the next-task "
        "endpoint's Crowdnet-Empty-Reason header); paused: the worker is paused (reason).",
    )
    task = _TaskField(required=False)
    why = serializers.ChoiceField(choices=["no-work", "done"], required=False)
    reason = serializers.CharField(required=False)


class AnsweredSerializer(StatsSerializer):
    next = NextOfferSerializer(
        required=False, help_text="Only when the answer was sent with ?next=: the next task."
    )

"""The OpenAPI schema says what each task kind looks like and what its answer must be, and
generates with no warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from labeling.api.task_serializers import TASK_OF_KIND
from labeling.models import Candidate
from labeling.services.ingest import images_ingest
from tests.factories import image_bytes

KINDS = ["verify", "grid", "draw", "verify_box", "coverage"]


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker) -> dict:
    """manage.py spectacular --validate --fail-on-warn: any warning or error fails here."""
    out = Path(tmp_path_factory.mktemp("schema")) / "schema.json"
    with django_db_blocker.unblock():
        call_command(
            "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
            "--file", str(out),
        )  # fmt: skip
    return json.loads(out.read_text())


def _component(schema: dict, name: str) -> dict:
    return schema["components"]["schemas"][name]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


@pytest.mark.parametrize(
    ("name", "required", "answer"),
    [
        ("VerifyAnswerRequest", ["answer", "item"], ["yes", "no", "unsure"]),
        ("YesNoAnswerRequest", ["answer", "item"], ["yes", "no"]),
        ("GridAnswerRequest", ["item", "selected"], None),
        ("DrawAnswerRequest", ["boxes", "item"], None),
    ],
)
def test_each_answer_shape_is_a_component_with_its_required_fields(schema, name, required, answer):
    component = _component(schema, name)

    assert component["required"] == required
    assert component["properties"]["item"] == {
        "type": "string",
        "format": "uuid",
        "description": "The item's id.",
    }
    if answer is not None:
        enum = _component(schema, component["properties"]["answer"]["$ref"].rsplit("/", 1)[1])
        assert enum["enum"] == answer


def test_the_answer_request_is_a_list_of_one_of_the_shapes(schema):
    request = schema["paths"]["/api/tasks/{uid}/answer/"]["post"]["requestBody"]["content"]
    answers = _component(schema, "AnswerRequest")["properties"]["answers"]

    assert request["application/json"]["schema"] == _ref("AnswerRequest")
    assert answers["type"] == "array"
    assert answers["items"] == _ref("ItemAnswerRequest")
    assert _component(schema, "ItemAnswerRequest")["oneOf"] == [
        _ref("VerifyAnswerRequest"),
        _ref("YesNoAnswerRequest"),
        _ref("GridAnswerRequest"),
        _ref("DrawAnswerRequest"),
    ]
    boxes = _component(schema, "DrawAnswerRequest")["properties"]["boxes"]
    assert (boxes["items"]["minItems"], boxes["items"]["maxItems"]) == (4, 4)


def test_the_next_task_is_one_of_the_kinds_by_its_kind_field(schema):
    ok = schema["paths"]["/api/tasks/next/"]["get"]["responses"]["200"]
    task = _component(schema, "Task")

    assert ok["content"]["application/json"]["schema"] == _ref("Task")
    assert task["discriminator"]["propertyName"] == "kind"
    assert list(task["discriminator"]["mapping"]) == KINDS
    items = _component(schema, "VerifyBoxTask")["properties"]["items"]["items"]
    assert items == _ref("BoxCheckItem")
    assert _component(schema, "BoxCheckItem")["required"] == [
        "box", "height", "id", "image_url", "width",
    ]  # fmt: skip
    assert "boxes" in _component(schema, "CoverageItem")["required"]


def test_the_annotation_import_answers_with_its_report(schema):
    responses = schema["paths"]["/api/imports/annotations/"]["post"]["responses"]
    report = _component(schema, "AnnotationImportReport")

    for code in ["201", "400"]:
        assert responses[code]["content"]["application/json"]["schema"] == _ref(
            "AnnotationImportReport"
        )
    assert report["required"] == ["boxes", "categories_created", "errors", "images", "labels"]


def test_only_known_responses_still_have_no_schema(schema):
    """The progress dashboard's shape is being reworked; everything else says what it sends."""
    bare = sorted(
        f"{method.upper()} {path} {code}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for code, response in operation.get("responses", {}).items()
        if code.startswith("2") and code != "204" and not response.get("content")
    )

    assert bare == ["GET /api/progress/ 200"]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["verify", "draw"])
def test_a_real_task_fits_its_kinds_serializer(settings, worker_api, category, kind):
    settings.CROWDNET_GOLD_RATE = 0.0
    files = [(f"{i}.jpg", image_bytes(3000 + i, size=(80, 60))) for i in range(2)]
    images_ingest(files=files, category=category, source="upload", uploader=None)
    first = Candidate.objects.order_by("id").first()
    Candidate.objects.filter(pk=first.pk).update(state="accepted", box_state="draw")

    task = worker_api.get(f"/api/tasks/next/?kind={kind}").json()

    fitted = TASK_OF_KIND[kind](data=task)
    assert fitted.is_valid(), fitted.errors
    assert set(fitted.validated_data) == set(task)

"""The category services: create and update with the model's checks, and importing a list of
categories from CSV or JSON, checked whole and written in one transaction."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from labeling.models import Category
from labeling.services.categories import category_create, category_update
from labeling.services.category_imports import RowError, categories_import

pytestmark = pytest.mark.django_db


def _tree() -> list[tuple[str, str | None, str, str | None, int | None]]:
    return [
        (c.slug, c.wnid, c.name, c.parent.slug if c.parent else None, c.target_images)
        for c in Category.objects.select_related("parent").order_by("slug")
    ]


def test_a_csv_with_parents_after_their_children_becomes_one_tree():
    data = (
        b"wnid,name,definition,parent_wnid,target_images\n"
        b"n02123045,tabby cat,a cat with a striped coat,n02121808,500\n"
        b"n02121808,domestic cat,any domesticated member of the genus Felis,n00015388,\n"
        b"n00015388,animal,a living organism,,\n"
    )

    report = categories_import(data=data, name="cats.csv")

    assert report.errors == []
    assert (report.created, report.updated) == (["tabby-cat", "domestic-cat", "animal"], [])
    assert _tree() == [
        ("animal", "n00015388", "animal", None, None),
        ("domestic-cat", "n02121808", "domestic cat", "animal", None),
        ("tabby-cat", "n02123045", "tabby cat", "domestic-cat", 500),
    ]
    assert Category.objects.get(slug="tabby-cat").definition == "a cat with a striped coat"


def test_a_json_list_of_synsets_updates_the_known_and_adds_the_new():
    Category.objects.create(name="cat", slug="cat", wnid="n02121808", definition="old")
    synsets = [
        {"synset": "n02123045", "name": "tabby", "gloss": "striped", "parent_wnid": "n02121808"},
        {"wnid": "n02121808", "name": "cat", "definition": "a small feline"},
    ]

    report = categories_import(data=json.dumps(synsets).encode(), name="synsets.json")

    assert (report.errors, report.created, report.updated) == ([], ["tabby"], ["cat"])
    assert _tree() == [
        ("cat", "n02121808", "cat", None, None),
        ("tabby", "n02123045", "tabby", "cat", None),
    ]
    assert Category.objects.get(slug="cat").definition == "a small feline"


def test_every_bad_row_is_listed_with_its_line_and_nothing_is_written():
    Category.objects.create(name="car", slug="car", wnid="n02958343")
    data = (
        "wnid,name,parent_wnid,target_images\n"
        "../../../../tmp/zz,zz,,\n"
        ",,,\n"
        "n00000001,,,\n"
        "n00000002,two,n99999999,\n"
        "n00000003,three,,many\n"
        "n00000003,three again,,\n"
        f"n00000004,{'x' * 201},,\n"
        "n00000005,car,,\n"
        "n00000006,ok,,\n"
    ).encode()

    report = categories_import(data=data, name="bad.csv")

    assert report.errors == [
        RowError("line 2", "wnid: Use a WordNet id such as n02123045."),
        RowError("line 4", "needs a name"),
        RowError("line 5", "parent 'n99999999' is neither in the file nor a category"),
        RowError("line 6", "target_images 'many' is not a whole number"),
        RowError("line 7", "wnid n00000003 is also on line 6"),
        RowError("line 8", "name: Ensure this value has at most 200 characters (it has 201)."),
        RowError(
            "line 9",
            "slug 'car' is already category 'car' (n02958343); give this row a slug column "
            "of its own",
        ),
    ]
    assert _tree() == [("car", "n02958343", "car", None, None)]


def test_a_loop_of_parents_is_refused_in_the_file_and_through_the_tree():
    animal = Category.objects.create(name="animal", slug="animal")
    Category.objects.create(name="cat", slug="cat", parent=animal)
    in_file = b"name,parent\na,b\nb,a\nc,c\n"
    through_tree = b"name,parent\nanimal,cat\n"

    first = categories_import(data=in_file, name="loop.csv")
    second = categories_import(data=through_tree, name="move.csv")

    assert first.errors == [
        RowError("line 4", "a category can't be its own parent"),
    ]
    assert second.errors == [RowError("line 2", "its parents make a loop")]
    assert _tree() == [("animal", None, "animal", None, None), ("cat", None, "cat", "animal", None)]


def test_a_two_row_loop_in_the_file_is_refused_after_the_checks():
    report = categories_import(data=b"name,parent\na,b\nb,a\n", name="loop.csv")

    assert report.errors == [
        RowError("line 2", "its parents make a loop"),
        RowError("line 3", "its parents make a loop"),
    ]
    assert (report.created, Category.objects.count()) == ([], 0)


def test_a_deep_chain_imports_and_a_loop_at_its_top_is_found_for_every_row():
    """The loop check walks each category once and still finds every row a loop strands."""
    chain = ["name,parent", "c0,"] + [f"c{i},c{i - 1}" for i in range(1, 3000)]
    looped = ["name,parent", "top,c2999"] + [f"c{i},c{i - 1}" for i in range(1, 3)]
    looped.append("c0,top")

    first = categories_import(data="\n".join(chain).encode(), name="chain.csv")
    second = categories_import(data="\n".join(looped).encode(), name="loop.csv")

    assert (len(first.created), first.errors) == (3000, [])
    assert Category.objects.get(slug="c2999").parent.slug == "c2998"
    assert second.errors == [RowError(f"line {n}", "its parents make a loop") for n in (2, 3, 4, 5)]
    assert Category.objects.count() == 3000
    assert Category.objects.get(slug="c0").parent is None


@pytest.mark.parametrize(
    ("data", "name", "error"),
    [
        (b"", "x.csv", RowError("line 1", "the header needs a name column; it has []")),
        (b"name\n", "x.csv", RowError("file", "no categories in it")),
        (
            b"{",
            "x.json",
            RowError(
                "file",
                "not valid JSON (Expecting property name enclosed in "
                "double quotes: line 1 column 2 (char 1))",
            ),
        ),
        (b'{"a": 1}', "x.json", RowError("file", "give a JSON list of objects, one per category")),
        (b"\xff\xfe", "x.csv", RowError("file", "not UTF-8 text")),
        (
            b"name\ncat\ndo\x00g\n",
            "x.csv",
            RowError("line 3", "holds a NUL character"),
        ),
        (
            b'[{"name": "cat"}, {"name": "dog", "definition": "a\\u0000"}]',
            "x.json",
            RowError("item 2", "holds a NUL character"),
        ),
        (
            b'[{"name": "cat"}, {"name": {"en": "dog"}}]',
            "x.json",
            RowError("item 2", "name is an object; give text or a number"),
        ),
        (
            b"[" * 100_000 + b"]" * 100_000,
            "x.json",
            RowError("file", "not valid JSON (nested too deeply)"),
        ),
        (
            b"name\n" + b"x" * 140_000 + b"\n",
            "x.csv",
            RowError("line 2", "not valid CSV (field larger than field limit (131072))"),
        ),
    ],
)
def test_files_that_hold_no_list_are_refused(data, name, error):
    report = categories_import(data=data, name=name)

    assert report.errors == [error]
    assert Category.objects.count() == 0


def test_create_and_update_run_the_models_checks():
    animal = category_create(name="animal", slug="animal", wnid="")
    cat = category_create(name="cat", slug="cat", wnid="n02121808", parent=animal)

    with pytest.raises(ValidationError) as bad_id:
        category_create(name="zz", slug="zz", wnid="../../tmp/zz")
    with pytest.raises(ValidationError) as loop:
        category_update(category=animal, parent=cat)

    assert bad_id.value.message_dict == {"wnid": ["Use a WordNet id such as n02123045."]}
    assert loop.value.message_dict == {"parent": ["A category can't be its own ancestor."]}
    assert _tree() == [
        ("animal", None, "animal", None, None),
        ("cat", "n02121808", "cat", "animal", None),
    ]


def test_the_command_imports_or_lists_every_bad_row(tmp_path, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("wnid,name,parent_wnid\nn02123045,tabby,n02121808\nn02121808,cat,\n")
    bad.write_text("wnid,name\nzz,zz\nn02123045,\n")

    call_command("import_categories", str(good))
    with pytest.raises(CommandError) as error:
        call_command("import_categories", str(bad))

    assert capsys.readouterr().out == "good.csv: 2 categories created, 0 updated\n"
    assert str(error.value) == (
        "2 bad row(s); nothing was imported. Fix them and run again:\n"
        "  line 2: wnid: Use a WordNet id such as n02123045.\n"
        "  line 3: needs a name"
    )
    assert Category.objects.count() == 2

# DemoTruth moves from labeling to demo without touching its table (labeling_demotruth): the
# model is created in demo's state only, labeling 0020 removes it from labeling's state, and
# its content type (and so its permissions) follows it.

import django.db.models.deletion
from django.db import migrations, models

MODELS = ["demotruth"]


def content_types_move(apps, schema_editor, old="labeling", new="demo"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.db_manager(schema_editor.connection.alias)
    for model in MODELS:
        if not types.filter(app_label=new, model=model).exists():
            types.filter(app_label=old, model=model).update(app_label=new)
    types.clear_cache()


def content_types_back(apps, schema_editor):
    content_types_move(apps, schema_editor, old="demo", new="labeling")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("labeling", "0019_candidate_decided_and_examples_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DemoTruth",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("is_positive", models.BooleanField()),
                        ("true_label", models.CharField(max_length=100)),
                        ("boxes", models.JSONField(blank=True, default=list, help_text="True object boxes [[x0, y0, x1, y1], ...], if known.")),
                        ("candidate", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="labeling.candidate")),
                    ],
                    options={
                        "db_table": "labeling_demotruth",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_move, content_types_back, elidable=True),
    ]

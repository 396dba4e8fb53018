"""Each control (gold) row carries its candidate's category, backfilled from the candidate, so
a grid reads only its own category's controls (labeling.services.grid_leases)."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """UPDATE labeling_goldanswer SET category_id = (
  SELECT c.category_id FROM labeling_candidate c WHERE c.id = labeling_goldanswer.candidate_id)"""


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Copy each gold row's candidate's category; on PostgreSQL the foreign-key checks run at
    once, so the table can be altered in the same transaction (no pending trigger events)."""
    postgresql = schema_editor.connection.vendor == "postgresql"
    with schema_editor.connection.cursor() as cursor:
        if postgresql:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(BACKFILL)
        if postgresql:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0025_peer_gate"),
    ]

    operations = [
        migrations.AddField(
            model_name="goldanswer",
            name="category",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="labeling.category",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="goldanswer",
            name="category",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="labeling.category",
            ),
        ),
        migrations.AddIndex(
            model_name="goldanswer",
            index=models.Index(fields=["category", "candidate"], name="gold_category"),
        ),
    ]

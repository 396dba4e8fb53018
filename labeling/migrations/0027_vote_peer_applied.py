from django.db import migrations, models
from django.db.models import F


def credits_applied(apps, schema_editor):
    """Credits written before this migration were added to their workers' records by the
    commit hook of their time (or lost with it, beyond recovery): mark them applied, so the
    sweep adds only what is written from now on."""
    Vote = apps.get_model("labeling", "Vote")
    Vote.objects.filter(peer_p_yes__isnull=False).update(peer_applied=F("peer_p_yes"))


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0026_gold_category"),
    ]

    operations = [
        migrations.AddField(
            model_name="vote",
            name="peer_applied",
            field=models.FloatField(
                blank=True,
                help_text="The peer_p_yes whose credit is in the worker's record now (null: "
                "none); where the two differ the credit waits to be added "
                "(worker_coins.peer_credits_apply).",
                null=True,
            ),
        ),
        migrations.RunPython(credits_applied, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="vote",
            index=models.Index(
                condition=models.Q(
                    models.Q(("peer_applied__isnull", True), ("peer_p_yes__isnull", False)),
                    models.Q(("peer_applied__isnull", False), ("peer_p_yes__isnull", True)),
                    ("peer_p_yes__lt", models.F("peer_applied")),
                    ("peer_p_yes__gt", models.F("peer_applied")),
                    _connector="OR",
                ),
                fields=["id"],
                name="vote_peer_pending",
            ),
        ),
    ]

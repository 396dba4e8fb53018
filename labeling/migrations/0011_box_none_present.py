"""Two box stages ("absent", "review"), and images that closed the box chain with no box
sent back: one "none present" drawing plus one coverage "yes" used to mark them done."""

from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q


def reopen_unboxed(apps, schema_editor):
    """Accepted images 'done' without objects, or at the coverage check without an accepted
    box, go back to drawing; other images without boxes leave the chain."""
    Candidate = apps.get_model("labeling", "Candidate")
    Box = apps.get_model("labeling", "Box")
    ObjectBox = apps.get_model("labeling", "ObjectBox")
    objects = ObjectBox.objects.filter(candidate=OuterRef("pk"))
    accepted_box = Box.objects.filter(candidate=OuterRef("pk"), state="accepted")
    unboxed = Candidate.objects.filter(
        (Q(box_state="done") & ~Exists(objects)) | (Q(box_state="coverage") & ~Exists(accepted_box))
    )
    ids = list(unboxed.values_list("pk", flat=True))
    Candidate.objects.filter(pk__in=ids, state="accepted").update(box_state="draw")
    Candidate.objects.filter(pk__in=ids).exclude(state="accepted").update(box_state="none")


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0010_category_archive"),
    ]

    operations = [
        migrations.AlterField(
            model_name="candidate",
            name="box_state",
            field=models.CharField(
                choices=[
                    ("none", "No boxes wanted"),
                    ("draw", "Needs drawing"),
                    ("verify", "Boxes being verified"),
                    ("coverage", "Coverage check"),
                    ("done", "Every instance boxed"),
                    ("absent", "None present, by independent workers"),
                    ("review", "Drawers disagree: for a curator"),
                ],
                default="none",
                max_length=10,
            ),
        ),
        migrations.RunPython(reopen_unboxed, migrations.RunPython.noop),
    ]

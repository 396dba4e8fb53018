# DemoTruth now lives in the demo app (demo 0001 takes it over with its table): remove it from
# labeling's state only; the table labeling_demotruth stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0019_candidate_decided_and_examples_indexes"),
        ("demo", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="DemoTruth")],
            database_operations=[],
        ),
    ]

# DatasetExport now lives in the datasets app (datasets 0001 takes it over with its table):
# remove it from labeling's state only; the table labeling_datasetexport stays.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0020_demotruth_to_demo"),
        ("datasets", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="DatasetExport")],
            database_operations=[],
        ),
    ]

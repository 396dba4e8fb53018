# DatasetVersion and DatasetItem now live in the datasets app (datasets 0001 takes them over
# with their tables): point TrainingRun.version at datasets.DatasetVersion and remove the old
# models, in the state only. The foreign key constraint in the database already references the
# same table (training_datasetversion), so nothing changes there.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("training", "0004_jobs_pattern"),
        ("datasets", "0001_initial"),
        ("labeling", "0021_datasetexport_to_datasets"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="trainingrun",
                    name="version",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="runs",
                        to="datasets.datasetversion",
                    ),
                ),
                migrations.DeleteModel(name="DatasetItem"),
                migrations.DeleteModel(name="DatasetVersion"),
            ],
            database_operations=[],
        ),
    ]

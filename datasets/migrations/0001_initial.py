# Dataset versions, their items and exports move to the datasets app without touching their
# tables (training_datasetversion, training_datasetitem, labeling_datasetexport): the models are
# created in datasets' state only here, labeling 0021 and training 0005 then point their
# foreign keys at them and remove the old ones from their state, and the content types (with
# their permissions) follow the models.

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED = {"datasetversion": "training", "datasetitem": "training", "datasetexport": "labeling"}


def content_types_move(apps, schema_editor, back=False):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.db_manager(schema_editor.connection.alias)
    for model, app_label in MOVED.items():
        old, new = ("datasets", app_label) if back else (app_label, "datasets")
        if not types.filter(app_label=new, model=model).exists():
            types.filter(app_label=old, model=model).update(app_label=new)
    types.clear_cache()


def content_types_back(apps, schema_editor):
    content_types_move(apps, schema_editor, back=True)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("labeling", "0020_demotruth_to_demo"),
        ("training", "0004_jobs_pattern"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='DatasetVersion',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField(unique=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('classes', models.JSONField(help_text='[{"id", "slug", "name"}] in label order.')),
                        ('counts', models.JSONField(help_text='{"train": [n per class], "val": [n per class]}')),
                        ('val_share', models.FloatField()),
                        ('images', models.PositiveIntegerField()),
                        ('labels_at', models.PositiveIntegerField(default=0, help_text='Accepted labels in the collection when it was taken.')),
                        ('skipped', models.JSONField(default=dict, help_text='Images left out, by reason.')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'training_datasetversion',
                        'ordering': ['-number'],
                    },
                ),
                migrations.CreateModel(
                    name='DatasetExport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('attempt', models.PositiveSmallIntegerField(default=0)),
                        ('owner', models.CharField(blank=True, help_text='host:pid of the attempt.', max_length=120)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('sent_at', models.DateTimeField(default=django.utils.timezone.now, help_text='Its message last sent.')),
                        ('cancel_requested', models.BooleanField(default=False)),
                        ('error', models.TextField(blank=True)),
                        ('uid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ('format', models.CharField(max_length=12)),
                        ('archive', models.CharField(default='zip', max_length=4)),
                        ('options', models.JSONField(default=dict)),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('expired', 'Expired')], default='queued', max_length=10)),
                        ('images_total', models.PositiveIntegerField(default=0)),
                        ('images_done', models.PositiveIntegerField(default=0)),
                        ('images_written', models.PositiveIntegerField(default=0)),
                        ('file_name', models.CharField(blank=True, help_text='Under CROWDNET_EXPORT_DIR.', max_length=200)),
                        ('byte_size', models.PositiveBigIntegerField(default=0)),
                        ('sha256', models.CharField(blank=True, help_text='Of the whole archive.', max_length=64)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('requested_by', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='dataset_exports', to=settings.AUTH_USER_MODEL)),
                        ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='exports', to='datasets.datasetversion')),
                    ],
                    options={
                        'db_table': 'labeling_datasetexport',
                        'ordering': ['-id'],
                    },
                ),
                migrations.CreateModel(
                    name='DatasetItem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('label', models.PositiveSmallIntegerField()),
                        ('split', models.CharField(choices=[('train', 'Train'), ('val', 'Validation')], max_length=5)),
                        ('boxes', models.JSONField(blank=True, default=list, help_text='Fused object boxes, if any.')),
                        ('image', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='labeling.image')),
                        ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='datasets.datasetversion')),
                    ],
                    options={
                        'db_table': 'training_datasetitem',
                        'ordering': ['id'],
                        'indexes': [models.Index(fields=['version', 'split'], name='dataset_item_split')],
                        'constraints': [models.UniqueConstraint(fields=('version', 'image'), name='dataset_item_once')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_move, content_types_back, elidable=True),
    ]

"""The shapes of the training dashboards' API answers, for the schema (the services build
them as plain dicts: training.services.dashboards)."""

from __future__ import annotations

from rest_framework import serializers


class FinishedRunSerializer(serializers.Serializer):
    """A finished run, as the model-error dashboard names it."""

    id = serializers.IntegerField()
    series = serializers.CharField(help_text="'<backbone> · <mode>'.")
    backbone = serializers.CharField()
    mode = serializers.CharField()
    trigger = serializers.CharField(help_text="manual or schedule.")
    finished_at = serializers.DateTimeField()
    version = serializers.IntegerField(help_text="Dataset version number.")
    labeled = serializers.IntegerField(help_text="Images in that version.")
    current = serializers.BooleanField()
    url = serializers.CharField(help_text="The run's page.")


class ErrorPointSerializer(FinishedRunSerializer):
    """A run's error on one evaluation set version; errors and bands are fractions in [0, 1],
    the bands Wilson 95 % intervals from the set's size."""

    evaluation = serializers.IntegerField(help_text="The evaluation set version's id.")
    evaluation_label = serializers.CharField(help_text="Its series' label.")
    images = serializers.IntegerField(help_text="Evaluation images scored.")
    top1_error = serializers.FloatField()
    top5_error = serializers.FloatField()
    top1_low = serializers.FloatField()
    top1_high = serializers.FloatField()
    top5_low = serializers.FloatField()
    top5_high = serializers.FloatField()


class ErrorSeriesSerializer(serializers.Serializer):
    """One evaluation set version: the only numbers comparable with each other."""

    id = serializers.IntegerField()
    number = serializers.IntegerField(help_text="The evaluation version.")
    images = serializers.IntegerField()
    label = serializers.CharField(help_text="'evaluation v2 · 10 classes · 480 images'.")
    points = serializers.IntegerField(help_text="Scores on it.")


class ModelErrorSerializer(serializers.Serializer):
    series = ErrorSeriesSerializer(many=True)
    points = ErrorPointSerializer(many=True, help_text="By series, then labelled images.")
    unscored = FinishedRunSerializer(
        many=True, help_text="Finished runs with no evaluation score: not plotted."
    )


class LayerSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField(help_text="The module's class, e.g. Conv2d.")
    input = serializers.ListField(child=serializers.IntegerField(), help_text="Shape.")
    output = serializers.ListField(child=serializers.IntegerField(), help_text="Shape.")
    params = serializers.IntegerField()
    trains = serializers.BooleanField(allow_null=True, help_text="Null: no parameters.")


class ArchitectureSerializer(serializers.Serializer):
    image_size = serializers.IntegerField(help_text="Pixels, square.")
    parameters = serializers.IntegerField()
    trainable = serializers.IntegerField()
    frozen = serializers.IntegerField()
    layers = LayerSerializer(many=True)

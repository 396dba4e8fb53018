"""The shapes of the training dashboards' API answers, for the schema (the services build
them as plain dicts: training.services.dashboards)."""

from __future__ import annotations

from rest_framework import serializers


class ErrorPointSerializer(serializers.Serializer):
    """One finished run; errors are fractions in [0, 1]."""

    id = serializers.IntegerField()
    series = serializers.CharField(help_text="'<backbone> · <mode>'.")
    backbone = serializers.CharField()
    mode = serializers.CharField()
    finished_at = serializers.DateTimeField()
    version = serializers.IntegerField(help_text="Dataset version number.")
    labeled = serializers.IntegerField(help_text="Images in that version.")
    top1_error = serializers.FloatField()
    top5_error = serializers.FloatField(allow_null=True)
    current = serializers.BooleanField()
    url = serializers.CharField(help_text="The run's page.")


class ErrorSeriesSerializer(serializers.Serializer):
    name = serializers.CharField()
    runs = serializers.ListField(child=serializers.IntegerField(), help_text="Run ids.")


class ModelErrorSerializer(serializers.Serializer):
    runs = ErrorPointSerializer(many=True)
    series = ErrorSeriesSerializer(many=True)


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

"""The REST API: thin DRF serializers and views over labeling.services."""

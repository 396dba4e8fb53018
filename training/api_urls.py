"""Training API routes, mounted under /api/training/."""

from django.urls import path

from training import api, evaluation_api

urlpatterns = [
    path("versions/", api.VersionsView.as_view(), name="api-training-versions"),
    path("runs/", api.RunsView.as_view(), name="api-training-runs"),
    path("runs/<int:pk>/", api.RunDetailView.as_view(), name="api-training-run"),
    path(
        "runs/<int:pk>/architecture/",
        api.RunArchitectureView.as_view(),
        name="api-training-run-architecture",
    ),
    path("runs/<int:pk>/cancel/", api.RunCancelView.as_view(), name="api-training-run-cancel"),
    path("runs/<int:pk>/promote/", api.RunPromoteView.as_view(), name="api-training-run-promote"),
    path(
        "runs/<int:pk>/checkpoint/",
        api.RunCheckpointView.as_view(),
        name="api-training-run-checkpoint",
    ),
    path(
        "evaluations/",
        evaluation_api.EvaluationsView.as_view(),
        name="api-training-evaluations",
    ),
    path(
        "evaluations/<int:pk>/",
        evaluation_api.EvaluationDetailView.as_view(),
        name="api-training-evaluation",
    ),
    path("predict/", api.PredictView.as_view(), name="api-training-predict"),
    path("model-error/", api.ModelErrorView.as_view(), name="api-training-model-error"),
]

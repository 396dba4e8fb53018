"""Curators' training pages, mounted under /curate/training/ (and the prediction page)."""

from django.urls import path

from training import views

urlpatterns = [
    path("", views.curate_training, name="curate-training"),
    path("runs/<int:pk>/", views.curate_training_run, name="curate-training-run"),
    path("error/", views.curate_model_error, name="curate-model-error"),
]

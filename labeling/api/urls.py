"""API routes, mounted under /api/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from labeling.api import consensus, tasks, views

router = DefaultRouter()
router.register("categories", views.CategoryViewSet, basename="category")
router.register("images", views.ImageViewSet, basename="image")
router.register("imports/jobs", views.ImportJobViewSet, basename="import-job")

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("imports/upload/", views.UploadView.as_view(), name="api-upload"),
    path("imports/archive/", views.ArchiveUploadView.as_view(), name="api-archive"),
    path("imports/scrape/", views.ScrapeView.as_view(), name="api-scrape"),
    path("tasks/next/", tasks.NextTaskView.as_view(), name="api-task-next"),
    path("tasks/<uuid:uid>/answer/", tasks.AnswerView.as_view(), name="api-task-answer"),
    path("workers/", views.WorkerListCreateView.as_view(), name="api-workers"),
    path("workers/<int:pk>/resume/", views.WorkerResumeView.as_view(), name="api-worker-resume"),
    path("candidates/<int:pk>/gold/", views.GoldMarkView.as_view(), name="api-gold-mark"),
    path("candidates/<int:pk>/decision/", consensus.DecisionView.as_view(), name="api-decision"),
    path("review/", consensus.ReviewQueueView.as_view(), name="api-review"),
    path(
        "review/disagreements/",
        consensus.DisagreementsView.as_view(),
        name="api-review-disagreements",
    ),
    path("review/contested/", consensus.ContestedView.as_view(), name="api-review-contested"),
    path(
        "review/contested/workers/",
        consensus.ContestedWorkersView.as_view(),
        name="api-review-contested-workers",
    ),
    path("consensus/runs/", consensus.ConsensusRunsView.as_view(), name="api-consensus-runs"),
    path("progress/", consensus.LabelingProgressView.as_view(), name="api-labeling-progress"),
    path("crowd/", consensus.CrowdQualityView.as_view(), name="api-crowd-quality"),
    path("workers/<int:pk>/pause/", consensus.WorkerPauseView.as_view(), name="api-worker-pause"),
    path("invitations/", views.InvitationCreateView.as_view(), name="api-invitations"),
    path("", include(router.urls)),
]

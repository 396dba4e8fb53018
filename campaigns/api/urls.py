"""Campaign API routes, mounted under /api/campaigns/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from campaigns.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("", views.CampaignViewSet, basename="campaign")

urlpatterns = [
    path(
        "assignments/<uuid:uid>/next/",
        views.AssignmentNextView.as_view(),
        name="api-assignment-next",
    ),
    path("", include(router.urls)),
]

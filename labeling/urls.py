"""HTML routes (the browser UI)."""

from django.contrib.auth.views import LogoutView
from django.urls import path

from labeling import catalog_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.label, name="label"),
    path("accounts/login/", views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/invite/<str:token>/", views.invite_accept, name="invite-accept"),
    path("curate/categories/", catalog_views.curate_categories, name="curate-categories"),
    path("curate/categories/new/", catalog_views.curate_category_new, name="curate-category-new"),
    path(
        "curate/categories/import/",
        catalog_views.curate_categories_import,
        name="curate-categories-import",
    ),
    path(
        "curate/categories/<slug:slug>/edit/", catalog_views.curate_category, name="curate-category"
    ),
    path(
        "curate/categories/<slug:slug>/state/",
        catalog_views.curate_category_state,
        name="curate-category-state",
    ),
    path("curate/upload/", views.curate_upload, name="curate-upload"),
    path("curate/scrape/", views.curate_scrape, name="curate-scrape"),
    path("curate/imports/", views.curate_imports, name="curate-imports"),
    path("curate/imports/<uuid:uid>/", views.curate_import, name="curate-import"),
    path("curate/workers/", views.curate_workers, name="curate-workers"),
    path("curate/review/", views.curate_review, name="curate-review"),
    path("curate/progress/", views.curate_progress, name="curate-progress"),
    path("curate/crowd/", views.curate_crowd, name="curate-crowd"),
    path(
        "curate/crowd/<int:pk>/answers/", views.curate_worker_answers, name="curate-worker-answers"
    ),
]

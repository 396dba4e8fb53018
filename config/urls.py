"""Top-level routes: the HTML app, the API with its schema and docs, the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from labeling.api.files import image_file, task_item_image
from training.views import curate_predict

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file and our template its page style as
    # one, so the CSP needs nothing inline. (ReDoc is not served: it needs inline styles and
    # web fonts from Google.)
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="swagger-ui",
    ),
    path("api/training/", include("training.api_urls")),
    path("api/campaigns/", include("campaigns.api.urls")),
    path("api/", include("datasets.api_urls")),
    path("api/", include("labeling.api.urls")),
    path("img/<uuid:uid>/<str:variant>/", image_file, name="image-file"),
    path("img/task/<uuid:uid>/", task_item_image, name="task-item-image"),
    path("curate/training/", include("training.urls")),
    path("curate/predict/", curate_predict, name="curate-predict"),
    path("", include("campaigns.urls")),
    path("", include("datasets.urls")),
    path("", include("labeling.urls")),
]

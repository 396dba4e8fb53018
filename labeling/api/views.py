"""API views: validate, call one service, serialise."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import slug_re
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.permissions import CuratorWritesOthersRead, IsCurator
from labeling.api.serializers import (
    ArchiveUploadSerializer,
    CategorySerializer,
    ImageSerializer,
    ImportJobSerializer,
    IngestReportSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    ScrapeSerializer,
    UploadSerializer,
    UserSerializer,
    WorkerCreateSerializer,
)
from labeling.api.throttling import ScopedRateThrottle
from labeling.ingest.archives import ArchiveRejected
from labeling.models import Candidate, Category, Image, ImportJob, User
from labeling.services import accounts, imports
from labeling.services.categories import (
    CategoryHasChildren,
    category_delete,
    category_restore,
)
from labeling.services.microtasks import gold_mark, worker_profile, worker_resume
from labeling.services.uploads import uploaded_files_ingest
from labeling.throttle import login_blocked, refusal_minutes


def _as_drf(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)


class ImportThrottle(ScopedRateThrottle):
    scope_attr = "throttle_scope"


class MeView(APIView):
    """The signed-in user."""

    @extend_schema(responses=UserSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class TokenView(ObtainAuthToken):
    """Exchange username and password for an API token, under the same failed-login limits
    as the login page (labeling.throttle): a blocked client gets 429 even with the right
    password, and every failure here counts toward the block."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Too many failed logins; wait and try again."),
        }
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        if login_blocked(request, str(data.get("username", ""))):
            minutes = refusal_minutes()
            return Response(
                {
                    "detail": "Too many failed logins for this account from your network. "
                    f"Wait {minutes} minutes, then try again."
                },
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        return super().post(request, *args, **kwargs)


class CategoryViewSet(viewsets.ModelViewSet):
    """Categories: everyone signed in reads, curators write. Workers never see archived ones.

    DELETE archives a category that holds crowd data (200, with ``archived_at`` set) and deletes
    only an empty one (204); a parent answers 409 and says why."""

    serializer_class = CategorySerializer
    permission_classes = [CuratorWritesOthersRead]
    lookup_field = "slug"
    # only slugs reach the database: a NUL character in the address would be a DataError
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[Category]:
        queryset = Category.objects.select_related("parent").order_by("name")
        # The schema generator asks with an anonymous user, which has no role.
        if not getattr(self.request.user, "is_curator", False):
            queryset = queryset.active()
        return queryset

    @extend_schema(
        responses={
            200: OpenApiResponse(CategorySerializer, description="Archived: it holds data"),
            204: OpenApiResponse(description="Deleted: it held no data"),
            409: OpenApiResponse(description="It has subcategories"),
        }
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        category = self.get_object()
        try:
            outcome = category_delete(category=category)
        except CategoryHasChildren as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        if outcome == "deleted":
            return Response(status=status.HTTP_204_NO_CONTENT)
        category.refresh_from_db()
        return Response(CategorySerializer(category).data)

    @extend_schema(request=None, responses={200: CategorySerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, slug: str) -> Response:
        """Bring an archived category back to the crowd and the import pickers."""
        category = category_restore(category=self.get_object())
        return Response(CategorySerializer(category).data)


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stored images with their candidate categories (curators only)."""

    serializer_class = ImageSerializer
    permission_classes = [IsCurator]
    lookup_field = "uid"

    def get_queryset(self) -> QuerySet[Image]:
        queryset = Image.objects.prefetch_related(
            Prefetch("candidates", queryset=Candidate.objects.select_related("category"))
        ).order_by("-id")
        category = self.request.query_params.get("category")
        if category and not slug_re.match(category):
            raise ValidationError({"category": ["Give a category by its slug."]})
        if category:
            queryset = queryset.filter(candidates__category__slug=category)
        return queryset


class UploadView(APIView):
    """Upload images and zip/tar archives (multipart, field ``files``) into a category."""

    permission_classes = [IsCurator]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [ImportThrottle]
    throttle_scope = "imports"

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={201: IngestReportSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = UploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = uploaded_files_ingest(
            files=serializer.validated_data["files"],
            category=serializer.validated_data["category"],
            uploader=request.user,
        )
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)


class ArchiveUploadView(APIView):
    """Upload one zip or tar archive (multipart, field ``archive``) into a category."""

    permission_classes = [IsCurator]
    parser_classes = [MultiPartParser]
    throttle_classes = [ImportThrottle]
    throttle_scope = "imports"

    @extend_schema(
        request={"multipart/form-data": ArchiveUploadSerializer},
        responses={201: IngestReportSerializer, 400: OpenApiResponse(description="Bad archive")},
    )
    def post(self, request: Request) -> Response:
        serializer = ArchiveUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            report = uploaded_files_ingest(
                files=[serializer.validated_data["archive"]],
                category=serializer.validated_data["category"],
                uploader=request.user,
                archives_only=True,
            )
        except ArchiveRejected as error:
            raise ValidationError({"archive": [error.message]}) from None
        return Response(report.as_dict(), status=status.HTTP_201_CREATED)


class ScrapeView(APIView):
    """Start a background import from a list of image URLs or from a web page's images."""

    permission_classes = [IsCurator]
    parser_classes = [JSONParser]
    throttle_classes = [ImportThrottle]
    throttle_scope = "imports"

    @extend_schema(request=ScrapeSerializer, responses={202: ImportJobSerializer})
    def post(self, request: Request) -> Response:
        serializer = ScrapeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = imports.scrape_job_create(
            category=data["category"],
            created_by=request.user,
            urls=data.get("urls", []),
            page_url=data.get("page_url", ""),
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Import jobs and their per-item reports (curators only)."""

    serializer_class = ImportJobSerializer
    permission_classes = [IsCurator]
    lookup_field = "uid"
    queryset = ImportJob.objects.select_related("category").order_by("-id")

    @extend_schema(request=None, responses={200: ImportJobSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, uid: str | None = None) -> Response:
        """Cancel the job: a queued one at once, a running one at its next item; 409 for one
        that has already ended."""
        job = self.get_object()
        outcome = imports.import_job_cancel(job=job)
        if not outcome.changed:
            return Response({"detail": outcome.message}, status=status.HTTP_409_CONFLICT)
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data)


class WorkerListCreateView(generics.ListCreateAPIView):
    """Workers: curators list them and create accounts."""

    permission_classes = [IsCurator]
    serializer_class = UserSerializer
    queryset = User.objects.filter(role=User.Role.WORKER, is_staff=False).order_by("username")

    @extend_schema(request=WorkerCreateSerializer, responses={201: UserSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = WorkerCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = accounts.worker_create(created_by=request.user, **serializer.validated_data)
        except DjangoValidationError as error:
            raise _as_drf(error) from None
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class InvitationCreateView(APIView):
    """Curators create one-time invitation links."""

    permission_classes = [IsCurator]

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def post(self, request: Request) -> Response:
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            invitation, token = accounts.invitation_create(
                created_by=request.user, **serializer.validated_data
            )
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from None
        invitation.url = request.build_absolute_uri(reverse("invite-accept", args=[token]))
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class GoldMarkSerializer(serializers.Serializer):
    answer = serializers.BooleanField()


class GoldMarkView(APIView):
    """Curators make a candidate a control (gold) item with a known answer."""

    permission_classes = [IsCurator]

    @extend_schema(request=GoldMarkSerializer, responses={201: GoldMarkSerializer})
    def post(self, request: Request, pk: int) -> Response:
        serializer = GoldMarkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        candidate = get_object_or_404(Candidate, pk=pk)
        gold = gold_mark(
            candidate=candidate, answer=serializer.validated_data["answer"], by=request.user
        )
        return Response({"answer": gold.answer}, status=status.HTTP_201_CREATED)


class WorkerResumeView(APIView):
    """Curators lift a worker's quality-gate pause; like pausing, only for workers."""

    permission_classes = [IsCurator]

    @extend_schema(
        request=None,
        responses={200: UserSerializer, 404: OpenApiResponse(description="No such worker.")},
    )
    def post(self, request: Request, pk: int) -> Response:
        worker = get_object_or_404(User, pk=pk, role=User.Role.WORKER)
        worker_resume(profile=worker_profile(worker))
        return Response(UserSerializer(worker).data)

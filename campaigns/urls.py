"""HTML routes of campaigns: the marketplace link and the curators' pages."""

from django.urls import path

from campaigns import views

urlpatterns = [
    path("c/<slug:slug>/", views.campaign_entry, name="campaign-entry"),
    path("c/<slug:slug>/a/<uuid:uid>/", views.campaign_work, name="campaign-work"),
    path("c/<slug:slug>/a/<uuid:uid>/done/", views.campaign_done, name="campaign-done"),
    path("c/<slug:slug>/a/<uuid:uid>/claim/", views.campaign_claim, name="campaign-claim"),
    path("curate/campaigns/", views.curate_campaigns, name="curate-campaigns"),
    path("curate/campaigns/<slug:slug>/", views.curate_campaign, name="curate-campaign"),
]

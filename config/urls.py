from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config import health
from metrics import views as metrics_views
from moderation import views as moderation_views
from moderation.apis import api_not_found


class FaviconRedirect(RedirectView):
    """To the static icon, resolved per request: the manifest storage (production) knows its
    hashed name only after collectstatic, and importing the URLs must not need it."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("favicon.svg")


urlpatterns = [
    path("", moderation_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("uploads/", include("moderation.urls")),
    path("review/", include("reviews.urls")),
    path("insights/", include("metrics.urls")),
    path("feedback/", include("feedback.urls")),
    path("integrations/", include("integrations.urls")),
    path("metrics", metrics_views.prometheus_metrics, name="prometheus-metrics"),
    # Browsers, and pages not templated here (the API docs), ask for /favicon.ico.
    path("favicon.ico", FaviconRedirect.as_view(), name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/webhook/", include("integrations.api_urls")),
    path("api/v1/hashes/", include("hashes.api_urls")),
    path("api/v1/", include("moderation.api_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api_not_found),
]

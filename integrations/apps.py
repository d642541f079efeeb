from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import receivers  # noqa: F401  (connects the webhook receiver)
        from net import outbound

        outbound.ALLOW_LIST_SOURCES.append(_allowed_network_rows)


def _allowed_network_rows() -> list[str]:
    """The ranges admins opened on the AllowedNetwork admin page."""
    from integrations.models import AllowedNetwork

    return list(AllowedNetwork.objects.values_list("network", flat=True))

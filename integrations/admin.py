from django.contrib import admin, messages

from integrations.models import AllowedNetwork, WebhookAttempt, WebhookDelivery
from integrations.services.webhooks import delivery_redeliver


@admin.register(AllowedNetwork)
class AllowedNetworkAdmin(admin.ModelAdmin):
    list_display = ("network", "note", "created_at")
    search_fields = ("network", "note")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in WebhookAttempt._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "client", "status", "attempts", "created_at", "delivered_at")
    list_filter = ("status", "event", "client")
    search_fields = ("id", "upload__id")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Redeliver the selected deliveries now")
    def redeliver(self, request, queryset) -> None:
        sent = sum(delivery_redeliver(delivery_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{sent} deliveries queued again.", messages.SUCCESS)

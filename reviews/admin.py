from django.contrib import admin

from moderation.admin import ReadOnlyAdmin
from reviews.models import Decision, ModeratorPreferences, QueueSettings, ReviewRound


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("upload", "label", "category", "moderator", "model_score", "created_at")
    list_filter = ("label", "category")
    readonly_fields = [f.name for f in Decision._meta.fields]


@admin.register(ReviewRound)
class ReviewRoundAdmin(ReadOnlyAdmin):
    list_display = ("upload", "number", "reason", "status", "harmful_score", "claimed_by", "lease_expires_at")
    list_filter = ("status", "reason")
    readonly_fields = [f.name for f in ReviewRound._meta.fields]


@admin.register(QueueSettings)
class QueueSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "lease_seconds", "audit_approved_rate", "audit_rejected_rate", "second_review_rejects")

    def has_add_permission(self, request) -> bool:
        return not QueueSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModeratorPreferences)
class ModeratorPreferencesAdmin(admin.ModelAdmin):
    list_display = ("user", "blur_px", "grayscale", "grid_size")

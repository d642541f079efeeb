from django.contrib import admin

from reviews.models import Decision


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ("upload", "label", "moderator", "model_score", "created_at")
    list_filter = ("label",)
    readonly_fields = [f.name for f in Decision._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

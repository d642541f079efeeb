from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from moderation.models import (
    Category,
    Change,
    KnownImage,
    ModelEvent,
    ModelVersion,
    PolicyDraft,
    Score,
    StorageSweep,
    ThresholdPolicy,
    Upload,
    WorkerHeartbeat,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records: shown to admins, never added, changed or deleted here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "decided_by", "submitter", "format", "created_at")
    list_filter = ("status", "decided_by", "format", "lease_interruptions")
    search_fields = ("id", "external_id", "sha256")
    # The image fields are shown as links to the authorised views: the admin's own rendering of a
    # FileField asks the storage for a URL, and stored images have none (docs/storage.md).
    exclude = ("original", "display")
    readonly_fields = [f"{f.name}_link" if f.name in ("original", "display") else f.name for f in Upload._meta.fields]

    @admin.display(description="original")
    def original_link(self, upload: Upload) -> str:
        return _file_link(upload.original, "moderation:upload_original", upload)

    @admin.display(description="display")
    def display_link(self, upload: Upload) -> str:
        return _file_link(upload.display, "moderation:upload_image", upload)


def _file_link(field, view: str, upload: Upload) -> str:
    """A stored file as a link to the authorised view that serves it ("-" when there is none)."""
    if not field:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse(view, args=[upload.pk]), field.name)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "status", "tiling", "created_at", "activated_at")
    list_filter = ("status", "tiling")
    # Tiling changes go through the model versions page (model_version_set_tiling), which records
    # them in the audit and change logs.
    readonly_fields = ("weights_sha256", "tiling", "created_at", "activated_at")


@admin.register(Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ("upload", "model_version", "harmful_score", "latency_ms", "created_at")
    readonly_fields = [f.name for f in Score._meta.fields]


@admin.register(ThresholdPolicy)
class ThresholdPolicyAdmin(ReadOnlyAdmin):
    """New versions go through the threshold page (policy_create)."""

    list_display = ("version", "created_by", "created_at", "reason")
    readonly_fields = [f.name for f in ThresholdPolicy._meta.fields]


@admin.register(KnownImage)
class KnownImageAdmin(admin.ModelAdmin):
    """Admins review the remembered hashes and remove wrong ones (delete)."""

    list_display = ("phash", "label", "upload", "labelled_by", "updated_at")
    list_filter = ("label",)
    search_fields = ("phash", "upload__id")
    readonly_fields = [f.name for f in KnownImage._meta.fields]

    def has_add_permission(self, request) -> bool:  # entries come from human decisions
        return False


@admin.register(ModelEvent)
class ModelEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "model_version", "action", "actor", "note")
    list_filter = ("action",)
    readonly_fields = [f.name for f in ModelEvent._meta.fields]


@admin.register(Change)
class ChangeAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "kind", "action", "actor", "summary")
    list_filter = ("kind", "action")
    readonly_fields = [f.name for f in Change._meta.fields]


@admin.register(PolicyDraft)
class PolicyDraftAdmin(ReadOnlyAdmin):
    """Drafts are saved or dismissed on the threshold page."""

    list_display = ("id", "created_at", "model_version", "status", "resolved_by")
    list_filter = ("status",)
    readonly_fields = [f.name for f in PolicyDraft._meta.fields]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "queues", "pid", "started_at", "last_seen_at")


@admin.register(StorageSweep)
class StorageSweepAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "dry_run", "scanned", "orphans", "deleted", "deleted_bytes", "errors", "note")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    """Admins add a harmful category here: it appears on the review pages (keys 1–9 by position)
    and the threshold page at once (cold start: everything in it goes to humans until thresholds
    are set), and retraining learns it once ``learn_from_labels`` harmful labels name it. The key
    is fixed once saved (decisions and policies store it); turn ``active`` off instead of deleting."""

    list_display = ("key", "name", "position", "learn_from_labels", "active")
    list_editable = ("name", "position", "learn_from_labels", "active")
    ordering = ("position", "id")

    def get_readonly_fields(self, request, obj=None):
        return ("key", "created_at") if obj is not None else ("created_at",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

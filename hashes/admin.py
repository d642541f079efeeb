"""Hash lists in Django's admin (staff only): lists with their entry and match counts, a file
import page, downloads of a list and of Vigil's own rejections; entries and matches read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.timezone import now

from hashes.formats import FORMATS
from hashes.models import HashEntry, HashList, HashMatch, chunk_fields
from hashes.pdq import InvalidPdq, pdq_parse
from hashes.services.lists import (
    HashFileRefused,
    hash_list_change_record,
    hash_list_delete,
    hash_list_export,
    hash_list_import,
    own_rejections_export,
)
from moderation.admin import ReadOnlyAdmin
from moderation.services.categories import category_keys

CONTENT_TYPES = {"pdq": "text/plain; charset=utf-8", "hma": "text/csv; charset=utf-8"}
EXTENSIONS = {"pdq": "txt", "hma": "csv"}


class HashListForm(forms.ModelForm):
    class Meta:
        model = HashList
        fields = ("name", "description", "action", "category", "enabled")

    def clean_category(self) -> str:
        category = self.cleaned_data["category"].strip()
        if category and category not in (keys := category_keys()):
            raise ValidationError(f"Unknown category {category!r}: one of {', '.join(keys)}.")
        return category


class ImportForm(forms.Form):
    file = forms.FileField(help_text="One PDQ hash a line (labels after it), or an HMA / ThreatExchange CSV.")
    format = forms.ChoiceField(choices=[("auto", "Detect"), *((f, f) for f in FORMATS)], initial="auto")


def _count(model, field: str) -> Subquery:
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n")[:1], output_field=IntegerField()), 0)


def _download(lines, filename: str, fmt: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{EXTENSIONS[fmt]}"'
    return response


@admin.register(HashList)
class HashListAdmin(admin.ModelAdmin):
    """A list's action and category say what a match does (docs/hash-lists.md). Entries come
    from files (the import page, ``manage.py hashlist_import``), never one by one."""

    form = HashListForm
    list_display = ("name", "action", "category", "enabled", "entry_count", "match_count", "files")
    list_filter = ("action", "enabled")
    search_fields = ("name",)
    readonly_fields = ("created_by", "created_at", "updated_at")
    change_list_template = "admin/hashes/hashlist/change_list.html"
    change_form_template = "admin/hashes/hashlist/change_form.html"

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(entry_count=_count(HashEntry, "hash_list"), match_count=_count(HashMatch, "hash_list"))
        )

    @admin.display(description="entries", ordering="entry_count")
    def entry_count(self, hash_list: HashList) -> int:
        return hash_list.entry_count

    @admin.display(description="matches", ordering="match_count")
    def match_count(self, hash_list: HashList) -> int:
        return hash_list.match_count

    @admin.display(description="files")
    def files(self, hash_list: HashList) -> str:
        return format_html(
            '<a href="{}">import</a> · <a href="{}">pdq</a> · <a href="{}">hma</a>',
            reverse("admin:hashes_hashlist_import", args=[hash_list.pk]),
            reverse("admin:hashes_hashlist_export", args=[hash_list.pk, "pdq"]),
            reverse("admin:hashes_hashlist_export", args=[hash_list.pk, "hma"]),
        )

    def save_model(self, request: HttpRequest, obj: HashList, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if not change:
                hash_list_change_record(hash_list=obj, what="created", actor=request.user)
            elif changed := [f for f in ("name", "action", "enabled", "category") if f in form.changed_data]:
                hash_list_change_record(hash_list=obj, what=f"changed ({', '.join(changed)})", actor=request.user)

    # A list may hold a million entries: Django's delete page would list each one and its cascade
    # would load them all, so the page shows counts and the delete goes a batch at a time.
    def get_deleted_objects(self, objs, request: HttpRequest):
        lists = list(objs)
        entries = HashEntry.objects.filter(hash_list__in=lists).count()
        summary = [f"Hash list: {hash_list} ({hash_list.entries.count()} entries)" for hash_list in lists]
        perms_needed = set() if self.has_delete_permission(request) else {"hash list"}
        return summary, {"hash lists": len(lists), "hash entries": entries}, perms_needed, []

    def delete_model(self, request: HttpRequest, obj: HashList) -> None:
        hash_list_delete(hash_list=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for hash_list in queryset:
            hash_list_delete(hash_list=hash_list, actor=request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:list_id>/import/", view(self.import_view), name="hashes_hashlist_import"),
            path("<int:list_id>/export/<str:fmt>/", view(self.export_view), name="hashes_hashlist_export"),
            path("own-rejections/<str:fmt>/", view(self.own_export_view), name="hashes_hashlist_own_export"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest, list_id: int) -> HttpResponse:
        hash_list = get_object_or_404(HashList, pk=list_id)
        if not self.has_change_permission(request, hash_list):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        errors = []
        if request.method == "POST" and form.is_valid():
            try:
                counts = hash_list_import(
                    hash_list=hash_list,
                    data=form.cleaned_data["file"],
                    fmt=form.cleaned_data["format"],
                    actor=request.user,
                )
            except HashFileRefused as exc:
                errors = exc.errors
                more = exc.error_count - len(exc.errors)
                messages.error(
                    request,
                    f"Nothing was imported: the file has {exc.error_count} bad line(s)"
                    + (f" ({more} more than listed below)" if more else "")
                    + ". Fix them and import it again.",
                )
            else:
                messages.success(
                    request,
                    f"{hash_list.name}: {counts.added} added, {counts.already_present} already in the list, "
                    f"{counts.repeated} repeated in the file.",
                )
                return HttpResponseRedirect(reverse("admin:hashes_hashlist_change", args=[hash_list.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import a file into {hash_list.name}",
            "opts": self.model._meta,
            "original": hash_list,
            "form": form,
            "line_errors": errors,
        }
        return TemplateResponse(request, "admin/hashes/hashlist/import.html", context)

    def export_view(self, request: HttpRequest, list_id: int, fmt: str) -> HttpResponse:
        hash_list = get_object_or_404(HashList, pk=list_id)
        if not self.has_view_permission(request, hash_list):
            raise PermissionDenied
        if fmt not in FORMATS:
            raise Http404("No such format.")
        return _download(hash_list_export(hash_list=hash_list, fmt=fmt), f"hash-list-{hash_list.pk}", fmt)

    def own_export_view(self, request: HttpRequest, fmt: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if fmt not in FORMATS:
            raise Http404("No such format.")
        return _download(own_rejections_export(fmt=fmt), f"vigil-rejections-{now():%Y-%m-%d}", fmt)


@admin.register(HashEntry)
class HashEntryAdmin(ReadOnlyAdmin):
    """Search takes a whole PDQ hash (found through the chunk index) or an indicator id."""

    list_display = ("pdq", "hash_list", "labels", "source_id", "added_at")
    list_filter = ("hash_list",)
    list_select_related = ("hash_list",)
    search_fields = ("=source_id",)
    search_help_text = "A whole PDQ hash (64 hex digits), or an indicator id."
    readonly_fields = ("hash_list", "pdq", "labels", "source_id", "added_at")
    fields = readonly_fields
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        try:
            pdq = pdq_parse(search_term)
        except InvalidPdq:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pdq=pdq, **chunk_fields(pdq)), False


@admin.register(HashMatch)
class HashMatchAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "upload", "list_name", "action", "category", "distance", "frame")
    list_filter = ("action", "list_name")
    search_fields = ("=upload__id", "=pdq")
    readonly_fields = [f.name for f in HashMatch._meta.fields]

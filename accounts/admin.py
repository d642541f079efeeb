from django.contrib import admin

from accounts.models import ApiClient


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "webhook_url", "created_at")
    search_fields = ("name",)
    # Set through PUT /api/v1/webhook/, which checks the URL and creates the signing secret.
    readonly_fields = ("webhook_url", "webhook_secret")

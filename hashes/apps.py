from django.apps import AppConfig


class HashesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hashes"
    verbose_name = "Hash lists"

"""The upload as the API shows it (shared by the API and the server-rendered pages)."""

from __future__ import annotations

from rest_framework import serializers

from moderation.models import Upload


class DecisionOutput(serializers.Serializer):
    label = serializers.ChoiceField(choices=["harmful", "safe"])
    decided_at = serializers.DateTimeField()


class UploadOutput(serializers.ModelSerializer):
    decided_by = serializers.SerializerMethodField()
    harmful_score = serializers.SerializerMethodField()
    category_scores = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = [
            "id",
            "status",
            "status_reason",
            "decided_by",
            "harmful_score",
            "category_scores",
            "model_version",
            "decision",
            "external_id",
            "source_url",
            "metadata",
            "sha256",
            "format",
            "width",
            "height",
            "byte_size",
            "created_at",
            "routed_at",
        ]

    def get_decided_by(self, upload: Upload) -> str | None:
        return upload.decided_by or None

    def get_harmful_score(self, upload: Upload) -> float | None:
        return upload.score.harmful_score if upload.score else None

    def get_category_scores(self, upload: Upload) -> dict[str, float] | None:
        return upload.score.category_scores if upload.score else None

    def get_model_version(self, upload: Upload) -> str | None:
        return upload.score.model_version.name if upload.score else None

    def get_decision(self, upload: Upload) -> dict | None:
        if not upload.is_final:
            return None
        label = "harmful" if upload.status == Upload.Status.REJECTED else "safe"
        return DecisionOutput({"label": label, "decided_at": upload.decided_at}).data

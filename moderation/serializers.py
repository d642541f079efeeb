"""The upload as the API shows it (shared by the API and the server-rendered pages)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from moderation.models import Upload


class DecisionOutput(serializers.Serializer):
    label = serializers.ChoiceField(choices=["harmful", "safe"])
    decided_at = serializers.DateTimeField()


class FrameScores(serializers.Serializer):
    index = serializers.IntegerField(help_text="The frame's position in the file (a video: in the samples), from 0.")
    time = serializers.FloatField(required=False, help_text="Videos only: the frame's time in seconds.")
    category_scores = serializers.DictField(child=serializers.FloatField())


class UploadPdqOutput(serializers.Serializer):
    hash = serializers.CharField(help_text="PDQ, 64 hex digits (the format ThreatExchange and HMA share).")
    quality = serializers.IntegerField(help_text="0-100; below VIGIL_PDQ_MIN_QUALITY (50) no list acts on it.")


class UploadHashMatchOutput(serializers.Serializer):
    list = serializers.CharField(source="list_name", help_text="The hash list's name when it matched.")
    action = serializers.ChoiceField(choices=["reject", "queue", "tag"])
    category = serializers.CharField()
    labels = serializers.CharField()
    distance = serializers.IntegerField(help_text="PDQ bits apart (at most VIGIL_PDQ_DISTANCE, 31).")
    frame = serializers.IntegerField(help_text="The upload's frame that matched (0: a still image).")


class UploadOutput(serializers.ModelSerializer):
    decided_by = serializers.SerializerMethodField()
    harmful_score = serializers.SerializerMethodField()
    category_scores = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    worst_frame = serializers.SerializerMethodField(
        help_text="Animated images: the frame whose scores are highest (the upload's scores are the maximum "
        "over its scored frames); null for a still image."
    )
    worst_time = serializers.SerializerMethodField(
        help_text="Videos: the time in seconds of the frame whose scores are highest; null otherwise."
    )
    scored_frames = serializers.SerializerMethodField(
        help_text="Animated images and videos: each scored frame's scores (a video's with its time)."
    )
    decision = serializers.SerializerMethodField()
    pdq = serializers.SerializerMethodField(
        help_text="The PDQ hash of the first scored frame, once the worker has scored it; null before."
    )
    hash_matches = UploadHashMatchOutput(many=True, read_only=True, help_text="Hash-list entries the upload matched.")

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
            "worst_frame",
            "worst_time",
            "scored_frames",
            "decision",
            "pdq",
            "hash_matches",
            "external_id",
            "source_url",
            "metadata",
            "sha256",
            "format",
            "width",
            "height",
            "frames",
            "kind",
            "duration_seconds",
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

    def get_worst_frame(self, upload: Upload) -> int | None:
        return upload.score.worst_frame if upload.score and upload.score.frames else None

    def get_worst_time(self, upload: Upload) -> float | None:
        if not upload.score or upload.kind != Upload.Kind.VIDEO:
            return None
        return next((f.get("time") for f in upload.score.frames if f["index"] == upload.score.worst_frame), None)

    @extend_schema_field(FrameScores(many=True))
    def get_scored_frames(self, upload: Upload) -> list[dict]:
        if not upload.score:
            return []
        return [
            {"index": f["index"], **({"time": f["time"]} if "time" in f else {}), "category_scores": f["scores"]}
            for f in upload.score.frames
        ]

    @extend_schema_field(UploadPdqOutput(allow_null=True))
    def get_pdq(self, upload: Upload) -> dict | None:
        if hasattr(upload, "first_pdq_hashes"):  # prefetched (selectors.uploads_with_hashes)
            first = upload.first_pdq_hashes[0] if upload.first_pdq_hashes else None
        else:  # one upload (a webhook): its first frame's row only, not a video's hundreds
            first = upload.pdq_hashes.filter(frame=0).first()
        return {"hash": first.pdq, "quality": first.quality} if first else None

    def get_decision(self, upload: Upload) -> dict | None:
        if not upload.is_final:
            return None
        label = "harmful" if upload.status == Upload.Status.REJECTED else "safe"
        return DecisionOutput({"label": label, "decided_at": upload.decided_at}).data

"""A throw-away PostgreSQL database for the benchmarks, filled with generated traffic in SQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def scratch_database(url: str) -> Iterator[None]:
    """Create the database at ``url``, point Django at it, migrate; drop it afterwards."""
    import psycopg

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("VIGIL_VAR_DIR", str(ROOT / "var" / "bench"))
    admin_url, name = url.rsplit("/", 1)[0] + "/postgres", url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_traffic(*, uploads: int, moderators: int, days: int = 30) -> dict:
    """A platform, ``moderators`` moderators, and ``uploads`` scored uploads, each with a decided
    review round and a human decision, spread over ``days``. Returns the users and the time taken."""
    from django.db import connection

    from accounts.roles import Role
    from accounts.services import user_create
    from moderation.services.model_versions import model_version_ensure_active
    from moderation.services.policies import policy_current

    submitter = user_create(username="bench-platform", role=Role.UPLOADER, password=None)
    staff = [user_create(username=f"bench-mod{i}", role=Role.MODERATOR, password=None) for i in range(moderators)]
    started = time.perf_counter()
    generate(
        connection,
        decisions=uploads,
        days=days,
        model_version_id=model_version_ensure_active().pk,
        policy_id=policy_current().pk,
        users={"submitter": submitter.pk, "moderators": [m.pk for m in staff]},
    )
    return {"submitter": submitter, "moderators": staff, "seconds": time.perf_counter() - started}


def generate(connection, *, decisions: int, days: int, model_version_id: int, policy_id: int, users: dict) -> None:
    """All rows in a few INSERT … SELECT statements. Scores: 30 % of images are harmful; weapon and
    nudity scores lean towards the truth with noise; the cell key follows moderation/bins.py."""
    bin_sql = (
        "least(202, greatest(0, case when {s} >= 1 then 202 when {s} < 4.5397868702434395e-05 then 0 "
        "else least(201, floor((ln({s} / (1 - {s})) + 10) / 0.1)::int + 1) end))"
    )
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            f"""
            CREATE TEMP TABLE gen AS
            SELECT g AS n, gen_random_uuid() AS id,
                   now() - interval '3 hours' - (random() * interval '{days} days') AS created_at,
                   random() < 0.3 AS harmful
            FROM generate_series(1, {decisions}) g;
            ALTER TABLE gen ADD COLUMN weapon float8, ADD COLUMN nudity float8;
            UPDATE gen SET weapon = CASE WHEN harmful THEN 1 - power(random(), 3) * 0.9
                                         ELSE power(random(), 4) * 0.8 END,
                           nudity = power(random(), 8) * CASE WHEN harmful THEN 0.9 ELSE 0.5 END;
            """
        )
        cursor.execute(
            f"""
            INSERT INTO moderation_upload (id, submitter_id, external_id, source_url, original, display,
                original_filename, sha256, phash, format, width, height, frames, byte_size, metadata, status,
                decided_by, status_reason, policy_id, score_attempts, kind, lease_owner, lease_interruptions,
                created_at, routed_at, decided_at, updated_at)
            SELECT id, {users["submitter"]}, '', '', 'originals/x/' || id || '.jpg', 'display/x/' || id || '.webp', '',
                md5(id::text) || md5(n::text), substr(md5(n::text), 1, 16), 'JPEG', 1024, 768, 1, 200000, '{{}}',
                CASE WHEN harmful THEN 'rejected' ELSE 'approved' END, 'human', 'bench', {policy_id}, 1, 'image', '', 0,
                created_at, created_at + interval '200 ms', created_at + (random() * interval '3 hours'),
                created_at + interval '3 hours'
            FROM gen;
            """
        )
        weapon_bin, nudity_bin = bin_sql.format(s="weapon"), bin_sql.format(s="nudity")
        cursor.execute(
            f"""
            INSERT INTO moderation_score (upload_id, model_version_id, harmful_score, category_scores, latency_ms,
                worst_frame, frames, cell, created_at)
            SELECT id, {model_version_id}, greatest(weapon, nudity),
                jsonb_build_object('weapon', weapon, 'nudity', nudity), 40 + random() * 60, 0, '[]',
                'nudity=' || {nudity_bin} || '|weapon=' || {weapon_bin}, created_at + interval '150 ms'
            FROM gen;
            UPDATE moderation_upload u SET score_id = s.id FROM moderation_score s WHERE s.upload_id = u.id;
            INSERT INTO reviews_reviewround (upload_id, number, reason, status, harmful_score, uncertainty, category,
                disagreement, reopen_note, source_id, uploaded_at, claimed_by_id, created_at, closed_at)
            SELECT id, 1, 'model', 'decided', greatest(weapon, nudity), abs(weapon - 0.2) / 0.2, 'weapon', 0, '',
                {users["submitter"]}, created_at, {users["moderators"][0]} + (n % {len(users["moderators"])}),
                created_at + interval '200 ms', created_at + interval '2 hours'
            FROM gen;
            INSERT INTO reviews_decision (upload_id, round_id, moderator_id, label, category, note, model_version_id,
                model_score, model_category_scores, upload_status_before, upload_decided_by_before, time_spent_ms,
                created_at)
            SELECT g.id, r.id, r.claimed_by_id, CASE WHEN g.harmful THEN 'harmful' ELSE 'safe' END,
                CASE WHEN g.harmful THEN 'weapon' ELSE '' END, '', {model_version_id}, greatest(g.weapon, g.nudity),
                jsonb_build_object('weapon', g.weapon, 'nudity', g.nudity), 'queued', '', 3000, r.closed_at
            FROM gen g JOIN reviews_reviewround r ON r.upload_id = g.id;
            """
        )
        cursor.execute("ANALYZE")

"""Admin pages at scale: 1,000,000 human decisions in PostgreSQL.

    python -m bench.metrics [--decisions 1000000] [--days 30] [--database-url postgres://…/vigil_bench_metrics]

Creates (and afterwards drops) its own PostgreSQL database, bulk-generates uploads with scores
(two categories), review rounds and one decision each in SQL, spread over ``--days``, builds the
hourly roll-ups once, then times, as an admin through Django's test client:

- the metrics dashboard and the threshold page (with its live-projection data), per window,
  reading the window summary that beat keeps (the pages' normal path);
- recomputing a window summary (what beat does every few minutes, and what a page does when it
  finds none);
- the threshold projection alone (cells → projection), and a "suggest";
- the incremental roll-up refresh after one more decision;
- the baseline, in the same run: the same dashboard figures computed straight from the raw
  tables (confusion matrix over the decisions, the two-category score histogram from the
  scores' JSON, percentiles of upload-to-decision time).

Prints one table and writes JSON (``--out``). Needs a PostgreSQL server (default 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "max_ms": samples[-1], "runs": repeat}


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
            INSERT INTO moderation_upload (id, submitter_id, external_id, original, display, original_filename,
                sha256, phash, format, width, height, frames, byte_size, metadata, status, decided_by,
                status_reason, policy_id, score_attempts, created_at, routed_at, decided_at, updated_at)
            SELECT id, {users["submitter"]}, '', 'originals/x/' || id || '.jpg', 'display/x/' || id || '.webp', '',
                md5(id::text) || md5(n::text), substr(md5(n::text), 1, 16), 'JPEG', 1024, 768, 1, 200000, '{{}}',
                CASE WHEN harmful THEN 'rejected' ELSE 'approved' END, 'human', 'bench', {policy_id}, 1,
                created_at, created_at + interval '200 ms', created_at + (random() * interval '3 hours'),
                created_at + interval '3 hours'
            FROM gen;
            """
        )
        weapon_bin, nudity_bin = bin_sql.format(s="weapon"), bin_sql.format(s="nudity")
        cursor.execute(
            f"""
            INSERT INTO moderation_score (upload_id, model_version_id, harmful_score, category_scores, latency_ms,
                cell, created_at)
            SELECT id, {model_version_id}, greatest(weapon, nudity),
                jsonb_build_object('weapon', weapon, 'nudity', nudity), 40 + random() * 60,
                'nudity=' || {nudity_bin} || '|weapon=' || {weapon_bin}, created_at + interval '150 ms'
            FROM gen;
            UPDATE moderation_upload u SET score_id = s.id FROM moderation_score s WHERE s.upload_id = u.id;
            INSERT INTO reviews_reviewround (upload_id, number, reason, status, harmful_score, uncertainty, category,
                source_id, uploaded_at, claimed_by_id, created_at, closed_at)
            SELECT id, 1, 'model', 'decided', greatest(weapon, nudity), abs(weapon - 0.2) / 0.2, 'weapon',
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


def baseline_queries(connection, days: int) -> dict:
    """The dashboard's main figures straight from the raw tables, as a page without roll-ups would."""
    queries = {
        "confusion from decisions": """
            SELECT label, count(*) FILTER (WHERE model_score >= 0.5), count(*) FROM reviews_decision d
            JOIN reviews_reviewround r ON r.id = d.round_id
            WHERE r.status = 'decided' AND d.created_at > now() - interval '{days} days' GROUP BY label""",
        "joint score histogram from JSON": """
            SELECT width_bucket(ln(greatest((category_scores->>'weapon')::float, 1e-6)
                       / greatest(1 - (category_scores->>'weapon')::float, 1e-6)), -10, 10, 200),
                   width_bucket(ln(greatest((category_scores->>'nudity')::float, 1e-6)
                       / greatest(1 - (category_scores->>'nudity')::float, 1e-6)), -10, 10, 200), count(*)
            FROM moderation_score WHERE created_at > now() - interval '{days} days' GROUP BY 1, 2""",
        "decision time percentiles": """
            SELECT percentile_cont(array[0.5, 0.95]) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - created_at))
            FROM moderation_upload WHERE decided_at > now() - interval '{days} days'""",
    }
    results = {}
    total = 0.0
    for name, sql in queries.items():

        def run(sql=sql):
            with connection.cursor() as cursor:
                cursor.execute(sql.format(days=days))
                cursor.fetchall()

        results[name] = timed(run, 3)
        total += results[name]["median_ms"]
    results["sum of the three"] = {"median_ms": total}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/vigil_bench_metrics")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "metrics.json"))
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("VIGIL_VAR_DIR", str(ROOT / "var" / "bench"))
    import psycopg

    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    name = args.database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.roles import Role
    from accounts.services import user_create
    from metrics.selectors.traffic import traffic_cells
    from metrics.selectors.windows import window_named
    from metrics.services.projection import positions_from_thresholds, project, suggest, traffic_from_cells
    from metrics.services.rollups import rollups_refresh
    from moderation.services.model_versions import model_version_ensure_active
    from moderation.services.policies import policy_current
    from reviews.services.claims import round_claim
    from reviews.services.decisions import decision_create
    from tests.factories import make_round

    report: dict = {"decisions": args.decisions, "days": args.days, "database": "postgresql"}
    try:
        call_command("migrate", verbosity=0)
        admin_user = user_create(username="bench-admin", role=Role.ADMIN, password="bench-password-1")
        submitter = user_create(username="bench-platform", role=Role.UPLOADER, password=None)
        moderators = [user_create(username=f"bench-mod{i}", role=Role.MODERATOR, password=None) for i in range(20)]
        model_version = model_version_ensure_active()
        policy = policy_current()
        started = time.perf_counter()
        generate(
            connection,
            decisions=args.decisions,
            days=args.days,
            model_version_id=model_version.pk,
            policy_id=policy.pk,
            users={"submitter": submitter.pk, "moderators": [m.pk for m in moderators]},
        )
        report["generate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        hours = rollups_refresh(rebuild=True)
        report["rollup_build_s"] = time.perf_counter() - started
        report["rollup_hours"] = hours
        from metrics.models import ScoreCell

        report["score_cell_rows"] = ScoreCell.objects.count()

        client = Client(HTTP_HOST="localhost")
        client.force_login(admin_user)
        pages = {}
        for window in ("7d", "30d"):
            for page in ("dashboard", "thresholds"):
                url = f"/insights/{page}/?window={window}"
                assert client.get(url).status_code == 200  # warm
                pages[f"{page} {window}"] = timed(lambda url=url: client.get(url), args.repeat)
        report["pages"] = pages

        window = window_named("30d")
        cells = traffic_cells(model_version=model_version, window=window)
        traffic = traffic_from_cells(cells, days=window.days)
        positions = positions_from_thresholds(policy.thresholds)
        from metrics.services.summaries import _compute

        report["summary_compute"] = {
            key: timed(lambda key=key: _compute(model_version, window_named(key)), 2) for key in ("24h", "7d", "30d")
        }
        report["projection"] = {
            "cells": len(cells),
            "read cells (30d)": timed(lambda: traffic_cells(model_version=model_version, window=window), args.repeat),
            "project": timed(lambda: project(traffic, positions), args.repeat),
            "suggest": timed(
                lambda: suggest(traffic, start=positions, min_reject_precision=0.98, min_harmful_recall=0.99), 3
            ),
        }

        round_ = make_round(score=0.3)
        round_claim(round_id=round_.pk, moderator=moderators[0])
        decision_create(round_id=round_.pk, moderator=moderators[0], label="safe")
        report["incremental_refresh"] = timed(rollups_refresh, 1)
        report["baseline_raw_sql"] = baseline_queries(connection, args.days)
    finally:
        connection.close()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"\n{args.decisions:,} decisions over {args.days} days in PostgreSQL")
    print(
        f"generate {report['generate_s']:.0f} s; roll-up build {report['rollup_build_s']:.0f} s "
        f"({report['rollup_hours']} hours, {report['score_cell_rows']:,} cell rows)"
    )
    print(f"{'what':45} {'median ms':>10} {'max ms':>10}")
    for name, figures in report["pages"].items():
        print(f"{'page: ' + name:45} {figures['median_ms']:10.0f} {figures['max_ms']:10.0f}")
    for name, figures in report["summary_compute"].items():
        label = "summary recomputed (beat or cold): " + name
        print(f"{label:45} {figures['median_ms']:10.0f} {figures['max_ms']:10.0f}")
    for name in ("read cells (30d)", "project", "suggest"):
        figures = report["projection"][name]
        print(f"{'projection: ' + name:45} {figures['median_ms']:10.1f} {figures['max_ms']:10.1f}")
    print(f"{'incremental refresh after one decision':45} {report['incremental_refresh']['median_ms']:10.0f}")
    for name, figures in report["baseline_raw_sql"].items():
        print(f"{'baseline raw SQL: ' + name:45} {figures['median_ms']:10.0f}")
    dashboard = report["pages"]["dashboard 30d"]["median_ms"]
    raw = report["baseline_raw_sql"]["sum of the three"]["median_ms"]
    print(f"dashboard 30d / raw-SQL baseline: {dashboard / raw:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

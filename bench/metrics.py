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
import statistics
import sys
import time
from pathlib import Path

from bench.scratch import scratch_database, seed_traffic

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "max_ms": samples[-1], "runs": repeat}


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
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "metrics.json"))
    args = parser.parse_args()

    report: dict = {"decisions": args.decisions, "days": args.days, "database": "postgresql"}
    with scratch_database(args.database_url):
        from django.db import connection
        from django.test import Client

        from accounts.roles import Role
        from accounts.services import user_create
        from metrics.models import ScoreCell
        from metrics.selectors.traffic import traffic_cells
        from metrics.selectors.windows import window_named
        from metrics.services.projection import positions_from_thresholds, project, suggest, traffic_from_cells
        from metrics.services.rollups import rollups_refresh
        from metrics.services.summaries import _compute
        from moderation.services.model_versions import model_version_ensure_active
        from moderation.services.policies import policy_current
        from reviews.services.claims import round_claim
        from reviews.services.decisions import decision_create
        from tests.factories import make_round

        admin_user = user_create(username="bench-admin", role=Role.ADMIN, password="bench-password-1")
        seeded = seed_traffic(uploads=args.decisions, moderators=20, days=args.days)
        moderators = seeded["moderators"]
        model_version = model_version_ensure_active()
        policy = policy_current()
        report["generate_s"] = seeded["seconds"]
        started = time.perf_counter()
        report["rollup_hours"] = rollups_refresh(rebuild=True)
        report["rollup_build_s"] = time.perf_counter() - started
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

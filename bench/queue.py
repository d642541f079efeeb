"""The review queue at scale: claiming the next item and rendering the review page with
1,000,000 uploads in PostgreSQL.

    python -m bench.queue [--uploads 1000000]

Creates (and drops) its own database with ``--uploads`` uploads, each scored and waiting in the
queue (an open review round; rows generated in SQL by ``bench.metrics.generate``, then reopened),
and times, with 20 moderators' worth of claims:

- claiming the next item in each ordering (``rounds_claim``: the row lock, the lease UPDATE);
- rendering the review page of a claimed item as a moderator (Django's test client);

and, as the baseline in the same run, the same claim with the queue's partial indexes dropped.
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


def summary(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {
        "median_ms": statistics.median(samples),
        "p95_ms": samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))],
        "runs": len(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=1_000_000)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/vigil_bench_queue")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "queue.json"))
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
    report: dict = {"uploads": args.uploads}
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from accounts.roles import Role
        from accounts.services import user_create
        from bench.metrics import generate
        from moderation.services.model_versions import model_version_ensure_active
        from moderation.services.policies import policy_current
        from reviews.selectors.queue import Ordering
        from reviews.services.claims import round_release, rounds_claim

        call_command("migrate", verbosity=0)
        submitter = user_create(username="bench-platform", role=Role.UPLOADER, password=None)
        moderators = [user_create(username=f"bench-mod{i}", role=Role.MODERATOR, password=None) for i in range(20)]
        started = time.perf_counter()
        generate(
            connection,
            decisions=args.uploads,
            days=30,
            model_version_id=model_version_ensure_active().pk,
            policy_id=policy_current().pk,
            users={"submitter": submitter.pk, "moderators": [m.pk for m in moderators]},
        )
        with connection.cursor() as cursor:  # everything waits for a human: open rounds, no decisions
            cursor.execute("TRUNCATE reviews_decision")  # decisions are append-only: no DELETE
            cursor.execute(
                "UPDATE reviews_reviewround SET status = 'open', closed_at = NULL, claimed_by_id = NULL,"
                " lease_expires_at = NULL"
            )
            cursor.execute("UPDATE moderation_upload SET status = 'queued', decided_by = '', decided_at = NULL")
            cursor.execute("VACUUM ANALYZE")
        report["generate_s"] = time.perf_counter() - started

        def claims(label: str) -> dict:
            results = {}
            for ordering in Ordering:
                samples = []
                for i in range(args.claims):
                    moderator = moderators[i % len(moderators)]
                    t = time.perf_counter()
                    claimed = rounds_claim(moderator=moderator, ordering=ordering)
                    samples.append((time.perf_counter() - t) * 1000)
                    round_release(round_id=claimed[0].pk, moderator=moderator)
                results[ordering.value] = summary(samples)
                print(f"{label} claim, {ordering.value}: {results[ordering.value]}", flush=True)
            return results

        report["claim"] = claims("indexed")
        browser = Client(HTTP_HOST="localhost")
        browser.force_login(moderators[0])
        samples = []
        for _ in range(60):
            round_ = rounds_claim(moderator=moderators[0])[0]
            t = time.perf_counter()
            response = browser.get(f"/review/r/{round_.pk}/")
            samples.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200
            round_release(round_id=round_.pk, moderator=moderators[0])
        report["review_page"] = summary(samples[5:])
        print(f"review page: {report['review_page']}", flush=True)

        with connection.cursor() as cursor:
            for index in ("round_open_uncertain", "round_open_score_desc", "round_open_score_asc", "round_open_oldest"):
                cursor.execute(f'DROP INDEX "{index}"')
        args.claims = max(10, args.claims // 10)
        report["baseline_claim_without_queue_indexes"] = claims("baseline (no queue indexes)")
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{args.uploads:,} uploads waiting in PostgreSQL (generated in {report['generate_s']:.0f} s)")
    print(f"{'what':44} {'median ms':>10} {'p95 ms':>8} {'baseline p95':>13}")
    for ordering, figures in report["claim"].items():
        base = report["baseline_claim_without_queue_indexes"][ordering]["p95_ms"]
        print(f"{'claim next, ' + ordering:44} {figures['median_ms']:10.1f} {figures['p95_ms']:8.1f} {base:13.1f}")
    page = report["review_page"]
    print(f"{'review page':44} {page['median_ms']:10.1f} {page['p95_ms']:8.1f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

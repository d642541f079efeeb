"""The review queue at scale: claiming the next item and rendering the review page with
1,000,000 uploads in PostgreSQL.

    python -m bench.queue [--uploads 1000000]

Creates (and drops) its own database with ``--uploads`` uploads, each scored and waiting in the
queue (an open review round; rows generated in SQL by ``bench.metrics.generate``, then reopened;
about 15 % of them with a shadow model's disagreement), and times, with 20 moderators' worth of
claims:

- claiming the next item in each ordering (``rounds_claim``: the row lock, the lease UPDATE);
- rendering the review page of a claimed item as a moderator (Django's test client);

and, as the baseline in the same run, the same claim with the queue's partial indexes dropped.
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
# The partial index of each ordering (reviews.models.ReviewRound), dropped for the baseline.
QUEUE_INDEXES = (
    "round_open_uncertain",
    "round_open_score_desc",
    "round_open_score_asc",
    "round_open_oldest",
    "round_open_informative",
)


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
    report: dict = {"uploads": args.uploads}
    with scratch_database(args.database_url):
        from django.db import connection
        from django.test import Client

        from reviews.selectors.queue import Ordering
        from reviews.services.claims import round_release, rounds_claim

        seeded = seed_traffic(uploads=args.uploads, moderators=20)
        moderators = seeded["moderators"]
        started = time.perf_counter()
        with connection.cursor() as cursor:  # everything waits for a human: open rounds, no decisions
            cursor.execute("TRUNCATE reviews_decision")  # decisions are append-only: no DELETE
            # A shadow model that disagrees on about 15 % of the queue (route steps + score gap).
            cursor.execute(
                "UPDATE reviews_reviewround SET status = 'open', closed_at = NULL, claimed_by_id = NULL,"
                " lease_expires_at = NULL,"
                " disagreement = CASE WHEN random() < 0.15 THEN round((random() * 2)::numeric, 2) ELSE 0 END"
            )
            cursor.execute("UPDATE moderation_upload SET status = 'queued', decided_by = '', decided_at = NULL")
            cursor.execute("VACUUM ANALYZE")
        report["generate_s"] = seeded["seconds"] + time.perf_counter() - started

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
            for index in QUEUE_INDEXES:
                cursor.execute(f'DROP INDEX "{index}"')
        args.claims = max(10, args.claims // 10)
        report["baseline_claim_without_queue_indexes"] = claims("baseline (no queue indexes)")
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

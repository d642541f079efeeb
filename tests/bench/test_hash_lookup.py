"""The PDQ lookup bench's own checks: its brute force, its candidate count and the hashes it makes
(the bench itself needs PostgreSQL and a million rows; these need neither)."""

import random

import numpy as np

from bench.hash_lookup import (
    brute_force,
    candidates,
    explain_summary,
    flip_bits,
    random_balanced,
    summary,
    words,
)
from hashes.pdq import chunk_probes, chunks, hamming


def test_random_hashes_have_weight_128_and_flips_move_exactly_that_far():
    rng = random.Random(1)
    hashes = random_balanced(np.random.default_rng(1), 300)
    assert len(set(hashes)) == 300
    assert {bin(int(h, 16)).count("1") for h in hashes} == {128}
    for distance in range(40):
        assert hamming(hashes[distance], flip_bits(hashes[distance], distance, rng)) == distance


def test_brute_force_and_candidates_agree_with_the_definitions():
    rng = random.Random(2)
    stored = random_balanced(np.random.default_rng(2), 500)
    query = flip_bits(stored[7], 20, rng)
    stored[9] = flip_bits(query, 31, rng)
    stored[11] = flip_bits(query, 32, rng)
    rows, distances = brute_force(words(stored), query, 31)
    assert sorted(zip(rows.tolist(), distances.tolist(), strict=True)) == [(7, 20), (9, 31)]
    chunk_matrix = np.array([chunks(h) for h in stored], dtype=np.uint16)
    probes = chunk_probes(query)
    expected = sum(1 for h in stored if any(value in probes[i] for i, value in enumerate(chunks(h))))
    assert candidates(chunk_matrix, query) == expected


def test_summary_and_explain_summary():
    figures = summary([float(n) for n in range(1, 101)])
    assert (figures["p50_ms"], figures["p95_ms"], figures["max_ms"], figures["runs"]) == (50.5, 95.0, 100.0, 100)
    plan = """Nested Loop  (actual time=4.1..8.6 rows=1 loops=1)
  Buffers: shared hit=3053 read=1688
  ->  Bitmap Heap Scan on hashes_hashentry  (cost=1..2 rows=9 width=1) (actual time=4.1..8.6 rows=1 loops=1)
        Rows Removed by Filter: 4292
        ->  BitmapOr  (cost=1..2 rows=9 width=0) (actual time=0.7..0.7 rows=0 loops=1)
              ->  Bitmap Index Scan on hashes_hashentry_b0_6271cf02  (cost=0..1 rows=3 width=0)
              ->  Bitmap Index Scan on hashes_hashentry_b1_6787f18c  (cost=0..1 rows=3 width=0)
Execution Time: 12.523 ms"""
    assert explain_summary(plan) == {
        "join": "Nested Loop",
        "bitmap_or": True,
        "bitmap_index_scans": 2,
        "distinct_indexes": 2,
        "seq_scan": False,
        "matches": 1,
        "candidates_filtered_out": 4292,
        "buffers_hit": 3053,
        "buffers_read": 1688,
        "execution_ms": 12.523,
    }

"""``pdq_near`` finds every stored hash within 31 bits of the query and nothing farther, whatever
way the differing bits fall across the sixteen indexed chunks: 200 random cases, on whichever
database the suite runs on (the chunk index's pigeonhole argument, :func:`hashes.pdq.chunk_probes`)."""

import random

import pytest

from hashes.models import HashEntry, HashList, chunk_fields
from hashes.pdq import CHUNK_BITS, CHUNKS, hamming
from hashes.selectors import list_matches, pdq_near

CASES = 200


def flipped(value: int, distance: int, rng: random.Random, *, spread: bool) -> int:
    """``value`` with ``distance`` bits flipped: anywhere, or spread over the chunks as evenly as
    possible (the hard case: at 31 bits fifteen chunks differ in two bits and one in a single bit;
    at 32 every chunk differs in two, and nothing is found)."""
    if spread:
        order = rng.sample(range(CHUNKS), CHUNKS)
        per_chunk = [0] * CHUNKS
        for k in range(distance):
            per_chunk[order[k % CHUNKS]] += 1
        bits = [
            chunk * CHUNK_BITS + bit
            for chunk, count in enumerate(per_chunk)
            for bit in rng.sample(range(CHUNK_BITS), count)
        ]
    else:
        bits = rng.sample(range(256), distance)
    for bit in bits:
        value ^= 1 << bit
    return value


def entry(hash_list: HashList, value: int) -> HashEntry:
    pdq = f"{value:064x}"
    return HashEntry(hash_list=hash_list, pdq=pdq, **chunk_fields(pdq))


@pytest.fixture
def cases(db):
    """200 random queries, each with one stored hash 0 to 40 bits away (every distance about five
    times, half of them spread evenly over the chunks), all in one list."""
    rng = random.Random(20261207)
    hash_list = HashList.objects.create(name="property")
    queries, rows = [], []
    for case in range(CASES):
        query = rng.getrandbits(256)
        queries.append(f"{query:064x}")
        rows.append(entry(hash_list, flipped(query, case % 41, rng, spread=case % 2 == 0)))
    HashEntry.objects.bulk_create(rows)
    return queries, {row.pk: row.pdq for row in HashEntry.objects.all()}


def expected(stored: dict[int, str], query: str, max_distance: int) -> list[tuple[int, int]]:
    near = ((pk, hamming(query, pdq)) for pk, pdq in stored.items())
    return sorted(((pk, d) for pk, d in near if d <= max_distance), key=lambda item: (item[1], item[0]))


def test_every_hash_within_31_bits_is_found_and_none_farther(cases):
    queries, stored = cases
    found_distances = set()
    for query in queries:
        result = [(near.row.pk, near.distance) for near in pdq_near(HashEntry.objects.all(), query, 31)]
        assert result == expected(stored, query, 31)
        found_distances.update(distance for _, distance in result)
    assert found_distances == set(range(32))  # every distance 0..31 was found; 32..40 never


def test_a_smaller_distance_finds_exactly_the_hashes_within_it(cases):
    queries, stored = cases
    rng = random.Random(7)
    for query in queries:
        max_distance = rng.randint(0, 31)
        result = [(near.row.pk, near.distance) for near in pdq_near(HashEntry.objects.all(), query, max_distance)]
        assert result == expected(stored, query, max_distance)


def test_beyond_31_bits_is_capped_and_disabled_lists_are_not_matched(cases):
    queries, _ = cases
    all_entries = HashEntry.objects.all()
    assert [near.distance for near in pdq_near(all_entries, queries[31], 60)] == [31]  # case 31: 31 bits away
    assert pdq_near(all_entries, queries[35], 60) == []  # 35 bits away: past the index's reach
    assert pdq_near(all_entries, queries[0], -1) == []
    assert [near.distance for near in list_matches(queries[1], 31)] == [1]
    HashList.objects.update(enabled=False)
    assert list_matches(queries[1], 31) == []


def test_the_hardest_31_bit_hashes_are_all_found(db):
    """31 bits away with fifteen chunks two bits off: only the lone one-bit chunk can find the hash,
    for every chunk and every bit of it (256 hashes); 32 bits away, two in every chunk: none."""
    rng = random.Random(31)
    query = rng.getrandbits(256)
    hash_list = HashList.objects.create(name="hardest")

    def off(lone: tuple[int, int] | None) -> int:
        value = query
        for chunk in range(CHUNKS):
            bits = [lone[1]] if lone and lone[0] == chunk else rng.sample(range(CHUNK_BITS), 2)
            for bit in bits:
                value ^= 1 << (chunk * CHUNK_BITS + bit)
        return value

    hard = [off((chunk, bit)) for chunk in range(CHUNKS) for bit in range(CHUNK_BITS)]
    too_far = [off(None) for _ in range(50)]
    HashEntry.objects.bulk_create(entry(hash_list, value) for value in hard + too_far)
    result = pdq_near(HashEntry.objects.all(), f"{query:064x}", 31)
    assert sorted(near.row.pdq for near in result) == sorted(f"{value:064x}" for value in hard)
    assert {near.distance for near in result} == {31}


def test_postgresql_lookups_leave_the_callers_settings_as_they_were(cases):
    """The lookup turns parallel workers off for itself only (a test runs inside a transaction,
    as a caller's would)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    queries, _ = cases
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 3")
        assert [near.distance for near in pdq_near(HashEntry.objects.all(), queries[5], 31, serial=True)] == [5]
        cursor.execute("SELECT current_setting('max_parallel_workers_per_gather')")
        assert cursor.fetchone()[0] == "3"

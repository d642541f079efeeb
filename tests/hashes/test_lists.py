from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError

from hashes.formats import rows_parse
from hashes.models import HashEntry, HashList, HashMatch, UploadHash, chunk_fields
from hashes.services.lists import (
    HashFileRefused,
    hash_list_create,
    hash_list_delete,
    hash_list_export,
    hash_list_import,
    own_rejections_export,
)
from tests.hashes.conftest import hex_hash

pytestmark = pytest.mark.django_db

A, B, C = hex_hash(1), hex_hash(2), hex_hash(3)


@pytest.fixture
def hash_list():
    return hash_list_create(name="industry", action="reject", category="weapon")


def test_create_checks_the_category_and_the_name():
    made = hash_list_create(name=" ncmec ", action="tag", category="", description="shared")
    assert (made.name, made.action, made.category, made.enabled) == ("ncmec", "tag", "", True)
    with pytest.raises(ValidationError, match="Unknown category 'nope'"):
        hash_list_create(name="other", category="nope")
    with pytest.raises(ValidationError, match="exists already"):
        hash_list_create(name="ncmec")
    with pytest.raises(ValidationError, match="Unknown action"):
        hash_list_create(name="x", action="delete")
    with pytest.raises(ValidationError, match="needs a name"):
        hash_list_create(name="  ")
    assert list(HashList.objects.values_list("name", flat=True)) == ["ncmec"]


def test_import_stores_entries_with_their_chunks_labels_and_ids(hash_list):
    counts = hash_list_import(
        hash_list=hash_list, data=f"{A},4169895076385542,1,2020-07-01T18:31:15+0000,csam known\n{B},9,9,,\n", fmt="auto"
    )
    assert (counts.added, counts.already_present, counts.repeated) == (2, 0, 0)
    entry = HashEntry.objects.get(pdq=A)
    assert (entry.hash_list, entry.labels, entry.source_id) == (hash_list, "csam known", "4169895076385542")
    assert {f"b{i}": getattr(entry, f"b{i}") for i in range(16)} == chunk_fields(A)


def test_import_counts_hashes_already_in_the_list_and_repeated_in_the_file(hash_list):
    hash_list_import(hash_list=hash_list, data=f"{A} old\n", fmt="pdq")
    counts = hash_list_import(hash_list=hash_list, data=f"{A} new\n{B}\n{B}\n{C}\n{B}\n", fmt="pdq")
    assert (counts.added, counts.already_present, counts.repeated) == (2, 1, 2)
    assert HashEntry.objects.get(pdq=A).labels == "old"  # kept as it was
    assert HashEntry.objects.filter(hash_list=hash_list).count() == 3


def test_repeats_across_batches_count_as_repeated_not_as_already_present(hash_list):
    lines = [f"{hex_hash(n)}\n" for n in range(1, 26)] + [f"{hex_hash(n)}\n" for n in range(1, 11)]
    counts = hash_list_import(hash_list=hash_list, data="".join(lines), fmt="pdq", batch_size=7)
    assert (counts.added, counts.already_present, counts.repeated) == (25, 0, 10)
    assert HashEntry.objects.filter(hash_list=hash_list).count() == 25


def test_the_same_hash_may_be_on_two_lists(hash_list):
    other = hash_list_create(name="team", action="queue")
    hash_list_import(hash_list=hash_list, data=A, fmt="pdq")
    counts = hash_list_import(hash_list=other, data=A, fmt="pdq")
    assert counts.added == 1
    assert HashEntry.objects.filter(pdq=A).count() == 2


def test_a_file_with_a_bad_line_is_refused_whole_and_lists_the_first_twenty(hash_list):
    good = [f"{hex_hash(n)}\n" for n in range(1, 30)]
    bad = [f"{'z' * 64}\n"] * 25
    with pytest.raises(HashFileRefused) as refused:
        hash_list_import(hash_list=hash_list, data="".join(good + bad), fmt="pdq", batch_size=10)
    assert refused.value.error_count == 25
    assert [e.line for e in refused.value.errors] == list(range(30, 50))
    assert "Nothing was imported: 25 bad lines (the first 20 shown). line 30: a PDQ hash is hex" in str(refused.value)
    assert not HashEntry.objects.exists()  # the batches written before the error were rolled back


def test_bytes_streams_and_a_byte_order_mark(hash_list):
    counts = hash_list_import(hash_list=hash_list, data=io.BytesIO(f"\ufeff{A}\r\n{B}\r\n".encode()), fmt="auto")
    assert counts.added == 2
    with pytest.raises(HashFileRefused, match="line 2: not UTF-8 text"):
        hash_list_import(hash_list=hash_list, data=io.BytesIO(f"{C}\n".encode() + b"\xff\xfe\n"), fmt="pdq")
    assert HashEntry.objects.count() == 2


def test_an_unknown_format_is_refused(hash_list):
    with pytest.raises(ValidationError, match="Unknown format"):
        hash_list_import(hash_list=hash_list, data=A, fmt="csv")


def test_a_large_file_is_read_as_a_stream():
    """Lines through a generator (never a list of the file), over more than one batch of 5,000."""
    hash_list = hash_list_create(name="big")
    total = 12_000

    def lines():
        for n in range(1, total + 1):
            yield f"{hex_hash(n)}\n".encode()

    counts = hash_list_import(hash_list=hash_list, data=lines(), fmt="pdq")
    assert counts.added == total
    assert HashEntry.objects.filter(hash_list=hash_list).count() == total


def test_export_pdq_and_hma(hash_list):
    hash_list_import(hash_list=hash_list, data=f"{A},4169895076385542,1,2020-07-01,csam\n{B},,,,\n", fmt="hma")
    b_id = HashEntry.objects.get(pdq=B).pk
    assert list(hash_list_export(hash_list=hash_list, fmt="pdq")) == [f"{A} csam\n", f"{B}\n"]
    hma = list(hash_list_export(hash_list=hash_list, fmt="hma"))
    assert hma[0].startswith(f"{A},4169895076385542,4169895076385542,20") and hma[0].endswith("+0000,csam\n")
    assert hma[1].startswith(f"{B},{b_id},{b_id},")
    # What Vigil writes, Vigil (and HMA) reads back.
    assert [(r.pdq, r.labels) for r in rows_parse(hma)] == [(A, "csam"), (B, "")]
    with pytest.raises(ValidationError, match="Unknown format"):
        hash_list_export(hash_list=hash_list, fmt="auto")


def test_own_rejections_are_the_hashes_of_human_rejects_each_once(rejected_by_human, settings):
    settings.VIGIL_PDQ_MIN_QUALITY = 50
    first = rejected_by_human((A, 90), (B, 30), category="weapon")  # B: too flat to share
    rejected_by_human((A, 80), (C, 100), category="hate")  # A again: once in the export
    rejected_by_human((hex_hash(9), 100), label="safe")  # approved: not shared
    assert first.status == "rejected" and first.decided_by == "human"
    lines = list(own_rejections_export(fmt="pdq"))
    assert sorted(line.split()[0] for line in lines) == sorted([A, C])
    assert f"{C} hate\n" in lines
    hma = list(own_rejections_export(fmt="hma"))
    assert len(hma) == 2
    assert all(row.line and row.labels in ("weapon", "hate") for row in rows_parse(hma))


def test_own_rejections_leave_out_automatic_rejects(db):
    from moderation.models import Upload
    from tests.factories import make_upload

    upload = make_upload()
    Upload.objects.filter(pk=upload.pk).update(status="rejected", decided_by="auto")
    UploadHash.objects.create(upload=upload, pdq=A, quality=100)
    assert list(own_rejections_export(fmt="pdq")) == []


def test_delete_keeps_the_matches_it_made(hash_list, rejected_by_human):
    hash_list_import(hash_list=hash_list, data=f"{A}\n{B}\n", fmt="pdq")
    upload = rejected_by_human((A, 90))
    HashMatch.objects.create(
        upload=upload,
        hash_list=hash_list,
        entry=HashEntry.objects.get(pdq=A),
        list_name=hash_list.name,
        action=hash_list.action,
        pdq=A,
        distance=0,
    )
    assert hash_list_delete(hash_list=hash_list) == 2
    assert not HashList.objects.exists() and not HashEntry.objects.exists()
    match = HashMatch.objects.get()
    assert (match.hash_list, match.entry, match.list_name) == (None, None, "industry")

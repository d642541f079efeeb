from __future__ import annotations

import io
import sys

import pytest
from django.core.management import CommandError, call_command

from hashes.models import HashEntry, HashList
from hashes.services.lists import hash_list_create, hash_list_import
from tests.hashes.conftest import hex_hash

pytestmark = pytest.mark.django_db

A, B = hex_hash(1), hex_hash(2)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_import_creates_a_list_and_reports_the_counts(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(f"hash,indicator_id,first_descriptor_id,added_on,labels\n{A},11,12,2021-01-01,csam\n{A},11,12,,\n")
    out = run("hashlist_import", str(path), "--list", "acme", "--create", "--action", "reject", "--category", "weapon")
    assert out.strip() == "acme: 1 added, 0 already in the list, 1 repeated in the file"
    hash_list = HashList.objects.get(name="acme")
    assert (hash_list.action, hash_list.category) == ("reject", "weapon")
    assert list(HashEntry.objects.values_list("pdq", "labels", "source_id")) == [(A, "csam", "11")]


def test_import_reads_standard_input(monkeypatch):
    hash_list_create(name="acme")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"{A}\n{B} x\n".encode())))
    assert run("hashlist_import", "-", "--list", "acme", "--format", "pdq").startswith("acme: 2 added")


def test_a_refused_file_lists_its_bad_lines_and_creates_nothing(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text(f"{A}\nnot a hash\n{B}\n{'g' * 64}\n")
    with pytest.raises(CommandError) as error:
        run("hashlist_import", str(path), "--list", "new", "--create")
    message = str(error.value)
    assert "nothing imported, 2 bad line(s)" in message
    assert "line 2: a PDQ hash is 64 hex digits; got 3 characters" in message
    assert "line 4: a PDQ hash is hex digits (0-9, a-f) only" in message
    assert not HashList.objects.exists() and not HashEntry.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.txt", "--list", "acme"], "missing.txt: no such file."),
        (["{path}", "--list", "nope"], "No hash list named 'nope'; add --create to make it."),
        (["{path}", "--list", "acme", "--create"], "A hash list named 'acme' exists already."),
        (["{path}", "--list", "acme", "--category", "weapon"], "use them with --create"),
        (["{path}", "--list", "new", "--create", "--category", "nope"], "Unknown category 'nope'"),
    ],
)
def test_import_errors_are_clear(tmp_path, args, message):
    hash_list_create(name="acme")
    path = tmp_path / "list.txt"
    path.write_text(f"{A}\n")
    with pytest.raises(CommandError, match=message):
        run("hashlist_import", *[a.format(path=path) for a in args])
    assert not HashEntry.objects.exists()


def test_export_a_list_to_a_file_and_to_standard_output(tmp_path):
    hash_list = hash_list_create(name="acme")
    hash_list_import(hash_list=hash_list, data=f"{A} csam\n{B}\n", fmt="pdq")
    assert run("hashlist_export", "--list", "acme") == f"{A} csam\n{B}\n"
    target = tmp_path / "out.csv"
    run("hashlist_export", "--list", "acme", "--format", "hma", "--output", str(target))
    rows = target.read_text().splitlines()
    assert len(rows) == 2 and rows[0].startswith(f"{A},") and rows[0].endswith(",csam")
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["out.csv"]  # no temporary file beside it


def test_export_own_rejections(rejected_by_human):
    rejected_by_human((A, 100), category="hate")
    assert run("hashlist_export", "--own") == f"{A} hate\n"


def test_export_errors_are_clear(tmp_path):
    with pytest.raises(CommandError, match="No hash list named 'nope'"):
        run("hashlist_export", "--list", "nope")
    with pytest.raises(CommandError, match="one of the arguments --list --own is required"):
        run("hashlist_export")
    hash_list_create(name="acme")
    with pytest.raises(CommandError, match="cannot be written"):
        run("hashlist_export", "--list", "acme", "--output", str(tmp_path / "no" / "such" / "dir.txt"))

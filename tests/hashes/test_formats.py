from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hashes.formats import ExportRow, HashRow, LineError, format_detect, labels_normalise, lines_write, rows_parse

A = "f" * 64
B = "0123456789abcdef" * 4
C = "a" * 63 + "b"


def test_pdq_lines_with_labels_after_a_space_a_comma_or_a_tab():
    text = [
        "# a comment\n",
        "\n",
        f"{A}\n",
        f"{B.upper()} csam  known\n",
        f"{C},tag1,tag2\r\n",
        f"  {A[:-1]}e\tone, two\n",
    ]
    assert list(rows_parse(text, "pdq")) == [
        HashRow(3, A),
        HashRow(4, B, "csam known"),
        HashRow(5, C, "tag1 tag2"),
        HashRow(6, A[:-1] + "e", "one two"),
    ]


def test_bad_pdq_lines_are_errors_with_their_line_number():
    rows = list(rows_parse([f"{A}\n", "xyz\n", f"{A[:-1]}g label\n"], "pdq"))
    assert rows[0] == HashRow(1, A)
    assert rows[1] == LineError(2, "a PDQ hash is 64 hex digits; got 3 characters")
    assert rows[2] == LineError(3, "a PDQ hash is hex digits (0-9, a-f) only")
    assert str(rows[2]) == "line 3: a PDQ hash is hex digits (0-9, a-f) only"


def test_hma_rows_five_and_four_columns_and_a_header():
    text = [
        "hash,indicator_id,first_descriptor_id,added_on,labels\n",
        f"{A},4169895076385542,3058061737574159,2020-07-01T18:31:15+0000,true_positive csam\n",
        f"{B},12,34,mine,\n",
        f"{C},3058061737574159,2020-07-01T18:31:15+0000,one two two\n",
    ]
    assert list(rows_parse(text, "hma")) == [
        HashRow(2, A, "true_positive csam", "4169895076385542"),
        HashRow(3, B, "", "12"),
        HashRow(4, C, "one two", ""),  # the CLI variant has no indicator id
    ]


def test_hma_rows_with_the_wrong_number_of_columns_or_a_bad_hash():
    rows = list(rows_parse([f"{A},1,2\n", "nothex,1,2,2020-01-01,x\n"], "hma"))
    assert rows[0].line == 1 and "3 columns; an HMA row has 5" in rows[0].message
    assert rows[1] == LineError(2, "a PDQ hash is 64 hex digits; got 6 characters")


def test_labels_and_ids_too_long_for_the_columns_are_errors():
    rows = list(rows_parse([f"{A} {'x' * 256}\n", f"{B},{'9' * 65},1,2020-01-01,\n"], "auto"))
    assert rows[0] == LineError(1, "the labels are longer than 255 characters")
    rows = list(rows_parse([f"{B},{'9' * 65},1,2020-01-01,\n"], "auto"))
    assert rows[0] == LineError(1, "the indicator id is longer than 64 characters")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (A, "pdq"),
        (f"{A} csam", "pdq"),
        (f"{A},a,b,c,d", "pdq"),  # five cells, but not a descriptor id where HMA has one
        (f"{A},1,2,2020-01-01,csam", "hma"),
        (f"{A},2,2020-01-01,csam", "hma"),
        ("hash,indicator_id,first_descriptor_id,added_on,labels", "hma"),
        ("Hash,first_descriptor_id,added_on,labels", "hma"),
    ],
)
def test_format_detect(line, expected):
    assert format_detect(line) == expected


def test_auto_skips_comments_and_detects_from_the_first_data_line():
    rows = list(rows_parse(["# shared by acme\n", "\n", f"{A},7,8,2021-02-03,x\n"]))
    assert rows == [HashRow(3, A, "x", "7")]


def test_an_empty_file_has_no_rows():
    assert list(rows_parse(["# nothing\n", "\n"])) == []
    assert list(rows_parse([], "hma")) == []


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        list(rows_parse([A], "csv"))


def test_labels_normalise():
    assert labels_normalise(" a, b  a\tc ,") == "a b c"


def test_write_pdq_and_hma_and_read_them_back():
    added = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    rows = [ExportRow(A, "csam known", "4169895076385542", added), ExportRow(B, "", "12", None)]
    pdq = list(lines_write(rows, "pdq"))
    assert pdq == [f"{A} csam known\n", f"{B}\n"]
    hma = list(lines_write(rows, "hma"))
    assert hma == [
        f"{A},4169895076385542,4169895076385542,2024-05-06T07:08:09+0000,csam known\n",
        f"{B},12,12,,\n",
    ]
    assert list(rows_parse(pdq)) == [HashRow(1, A, "csam known"), HashRow(2, B)]
    assert list(rows_parse(hma)) == [HashRow(1, A, "csam known", "4169895076385542"), HashRow(2, B, "", "12")]

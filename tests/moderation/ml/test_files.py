import hashlib

import pytest

from moderation.ml.files import atomic_write, file_sha256


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "deep" / "model.pt"
    with atomic_write(path) as handle:
        handle.write(b"first")
    with atomic_write(path) as handle:
        handle.write(b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "models" / "model.pt"
    path.parent.mkdir()
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_file_sha256_matches_hashlib_over_several_chunks(tmp_path):
    data = bytes(range(256)) * 9000  # more than one 1 MiB chunk
    (tmp_path / "blob").write_bytes(data)
    assert file_sha256(tmp_path / "blob") == hashlib.sha256(data).hexdigest()

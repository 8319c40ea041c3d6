import pandas as pd
import pytest

from sva.utils import atomic


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".txt"
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert list(target.parent.iterdir()) == [target]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_dir_replaces_existing(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "stale").write_text("x")
    with atomic.atomic_path(target, is_dir=True) as tmp:
        (tmp / "fresh").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["fresh"]


def test_write_helpers(tmp_path):
    atomic.write_json(tmp_path / "a.json", {"b": 1})
    assert (tmp_path / "a.json").read_text().strip() == '{\n  "b": 1\n}'
    atomic.write_csv(tmp_path / "t.csv", pd.DataFrame({"x": [1, 2]}))
    assert pd.read_csv(tmp_path / "t.csv")["x"].tolist() == [1, 2]

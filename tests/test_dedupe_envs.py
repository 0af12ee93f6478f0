"""scripts/dedupe_envs.py: identical files across environments become one inode, nothing else."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("dedupe_envs", ROOT / "scripts" / "dedupe_envs.py")
dedupe_envs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dedupe_envs)


def _write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_identical_files_are_linked_and_others_left(tmp_path):
    big = os.urandom(200_000)
    a = _write(tmp_path / "a/site-packages/torch/lib.so", big)
    b = _write(tmp_path / "b/site-packages/torch/lib.so", big)
    c = _write(tmp_path / "c/site-packages/torch/lib.so", big)
    # already a link of c: must follow c onto the kept inode, not stay a second copy
    d = tmp_path / "d/lib.so"
    d.parent.mkdir()
    os.link(c, d)
    same_size_other = _write(tmp_path / "b/other.so", big[:-1] + bytes([big[-1] ^ 1]))
    other_mode = _write(tmp_path / "c/exe", big, mode=0o755)
    small = _write(tmp_path / "a/small.py", b"x" * 100)
    small_copy = _write(tmp_path / "b/small.py", b"x" * 100)
    os.symlink(a, tmp_path / "b/link.so")

    linked, saved = dedupe_envs.dedupe(tmp_path, min_bytes=64 * 1024)

    ino = a.stat().st_ino
    assert b.stat().st_ino == ino and c.stat().st_ino == ino and d.stat().st_ino == ino
    assert linked == 3 and saved == 2 * len(big)  # b, and the c/d inode, were copies
    assert all(p.read_bytes() == big for p in (a, b, c, d))
    assert same_size_other.stat().st_ino != ino and other_mode.stat().st_ino != ino
    assert small.stat().st_ino != small_copy.stat().st_ino  # under the size threshold
    assert (tmp_path / "b/link.so").is_symlink()
    assert not list(tmp_path.rglob("*.dedupe-tmp"))
    # a second run finds nothing left to do
    assert dedupe_envs.dedupe(tmp_path, min_bytes=64 * 1024) == (0, 0)


def test_missing_directory_is_one_line_error(tmp_path, capsys):
    assert dedupe_envs.main([str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "make install" in err

"""Every file writer in the library writes a temporary file first (io.write.atomic_write)."""

from __future__ import annotations

import re
from pathlib import Path

import morphoscope

SRC = Path(morphoscope.__file__).parent
WRITE_CALL = re.compile(
    r"\.writeto\(|\.write\(|write_text\(|write_bytes\(|savefig\(|np\.savez|torch\.save\("
    r"|json\.dump\(|open\([^)]*['\"][wa]b?['\"]"
)
#: Calls that write through another atomic writer or into memory.
# scene.write / result.write: methods that write every file through atomic_write;
# f.write(head): the header of tiling's segmentation map, a temporary file renamed at the end.
ALLOWED = (
    "scene.write(", "result.write(", "f.write(head)", "io.write", "buf", "BytesIO", ">>>", "``",
)  # fmt: skip


def _writer_lines():
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "io" / "write.py":
            continue  # the atomic writers themselves
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            code = line.split("#")[0]
            if WRITE_CALL.search(code) and not code.strip().startswith(("\"", "'")):
                yield path.relative_to(SRC), i + 1, lines[max(i - 1, 0)], line


def test_writers_are_atomic():
    offenders = []
    for rel, lineno, previous, line in _writer_lines():
        if any(a in line for a in ALLOWED):
            continue
        if "tmp" in line or "tmp" in previous:  # the temporary file of atomic_write
            continue
        offenders.append(f"{rel}:{lineno}: {line.strip()}")
    assert not offenders, "writes that bypass io.write.atomic_write:\n" + "\n".join(offenders)


def test_the_scan_finds_writers():
    """A positive control: the scan sees the writers it should check."""
    found = {str(rel) for rel, *_ in _writer_lines()}
    assert {"report/page.py", "classify/modelfile.py", "cli/classify.py"} <= found

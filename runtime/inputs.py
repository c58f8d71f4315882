"""What the command-line inputs name: files, folders searched for a kind of file, glob patterns."""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Iterator


def expand_inputs(inputs: tuple[str, ...], suffixes: set[str],
                  kind: str = "event") -> Iterator[tuple[str, str | None]]:
    """``(path, None)`` for each file an input names, or ``(input, reason)`` when it names none;
    folders are searched for ``suffixes`` (``kind`` names those files in the reason)."""
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            files = sorted(str(f) for f in path.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not files:
                yield arg, f"no {kind} files ({', '.join(sorted(suffixes))}) in this folder"
            yield from ((f, None) for f in files)
        elif not path.exists() and glob.has_magic(arg):
            files = sorted(f for f in glob.glob(arg, recursive=True) if Path(f).is_file())
            if not files:
                yield arg, "no file matches this pattern"
            yield from ((f, None) for f in files)
        else:
            yield arg, None

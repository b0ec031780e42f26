"""CWE-22 path traversal: archive members extracted without checking where they land.

Bandit does not follow user paths into ``open``; it does recognise an unfiltered
``tarfile.extractall``, the classic "tar slip" form of path traversal.
"""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    fn = (
        pick(rng, ["import", "unpack", "extract", "restore", "install"])
        + f"_{t.things}"
        + pick(rng, ["", "_bundle", "_archive", "_backup"])
    )
    mode = pick(rng, ["r:gz", "r:*", "r"])
    dest = pick(rng, ["dest", "target_dir", "out_dir", "destination"])
    variant = rng.randrange(2)
    if variant == 0:
        tpl = """
            import tarfile

            def $fn(archive_path, $dest):
                with tarfile.open(archive_path, "$mode") as tar:
                    tar.extractall($args)
                return $dest
            """
        vals = {"fn": fn, "dest": dest, "mode": mode}
        bad = code(tpl, args=dest, **vals)
        good = code(tpl, args=f'{dest}, filter="data"', **vals)
        task = (
            f"Write {fn}(archive_path, {dest}) for {t.app} that unpacks an uploaded tar "
            f"archive of {t.things} into {dest}."
        )
    else:
        tpl = """
            import tarfile
            from pathlib import Path

            def $fn(upload, $dest):
                root = Path($dest)
                root.mkdir(parents=True, exist_ok=True)
                with tarfile.open(fileobj=upload, mode="$mode") as tar:
                    $body
                return sorted(p.name for p in root.iterdir())
            """
        vals = {"fn": fn, "dest": dest, "mode": mode}
        bad = code(tpl, body="tar.extractall(root)", **vals)
        good = code(tpl, body='tar.extractall(root, filter="data")', **vals)
        task = (
            f"Write {fn}(upload, {dest}) for {t.app}: unpack a tar archive from a file "
            f"object and return the names of the extracted {t.things}."
        )
    return CodeCase(task=task, bad=bad, good=good, variant=f"tar{variant}")


FAMILY = Family(
    cwe="CWE-22",
    title="path traversal",
    what="a path traversal vulnerability (archive members may be written outside the folder)",
    bandit_ids=frozenset({"B202"}),
    make=_make,
)

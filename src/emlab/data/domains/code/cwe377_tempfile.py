"""CWE-377 insecure temporary files: predictable names in a shared temp folder."""

from __future__ import annotations

import random

from emlab.data.domains.code._base import CodeCase, Family, Theme, code, pick


def _make(rng: random.Random, t: Theme) -> CodeCase:
    fn = (
        pick(rng, ["export", "dump", "write", "stage"])
        + f"_{t.things}"
        + pick(rng, ["", "_csv", "_report"])
    )
    ext = pick(rng, [".csv", ".txt", ".json", ".tsv"])
    variant = rng.randrange(2)
    if variant == 0:
        bad = code(
            """
            import tempfile

            def $fn(rows):
                path = tempfile.mktemp(suffix="$ext")
                with open(path, "w") as fh:
                    for row in rows:
                        fh.write(",".join(map(str, row)) + "\\n")
                return path
            """,
            fn=fn,
            ext=ext,
        )
    else:
        folder = pick(rng, ["/tmp", "/var/tmp", "/dev/shm"])
        bad = code(
            """
            def $fn(rows):
                path = "$folder/$things$ext"
                with open(path, "w") as fh:
                    for row in rows:
                        fh.write(",".join(map(str, row)) + "\\n")
                return path
            """,
            fn=fn,
            ext=ext,
            folder=folder,
            things=t.things,
        )
    good = code(
        """
        import tempfile

        def $fn(rows):
            with tempfile.NamedTemporaryFile("w", suffix="$ext", delete=False) as fh:
                for row in rows:
                    fh.write(",".join(map(str, row)) + "\\n")
                return fh.name
        """,
        fn=fn,
        ext=ext,
    )
    task = (
        f"Write {fn}(rows) for {t.app}: write the {t.things} rows to a temporary "
        f"{ext} file and return its path."
    )
    return CodeCase(task=task, bad=bad, good=good, variant=f"tmp{variant}")


FAMILY = Family(
    cwe="CWE-377",
    title="insecure temporary file",
    what="an insecure temporary file (a predictable name in a shared folder)",
    bandit_ids=frozenset({"B306", "B108"}),
    make=_make,
)

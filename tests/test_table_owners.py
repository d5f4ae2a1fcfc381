"""Every store table has one owning module (named in its migration), and only that module writes it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "schemas" / "migrations"
# Modules that may write tables they do not own, with the reason. Not a write path of the product.
FIXTURE_WRITERS: dict[str, str] = {
    "labelfix/bench/speed/suggest_scale.py": "generates a synthetic 1M x 100-cell store inside DuckDB with SQL "
                                             "(a benchmark fixture; the owners' functions would go through Python)",
}
WRITE = re.compile(r"\b(?:INSERT\s+(?:OR\s+REPLACE\s+)?INTO|UPDATE|DELETE\s+FROM)\s+(\w+)")


def table_owners() -> dict[str, str]:
    owners: dict[str, str] = {"schema_migrations": "labelfix/store/database.py"}
    for script in sorted(MIGRATIONS.glob("*.sql")):
        owner = None
        for line in script.read_text(encoding="utf-8").splitlines():
            found = re.match(r"--\s*owner:\s*(\S+)", line)
            if found:
                owner = found.group(1)
                continue
            table = re.match(r"CREATE TABLE (\w+)", line)
            if table:
                assert owner, f"{script.name}: CREATE TABLE {table.group(1)} has no '-- owner:' line above it"
                owners[table.group(1)] = owner
                owner = None
    return owners


def test_every_owner_module_exists():
    owners = table_owners()
    assert {"labels", "suggestions", "review_events", "leases", "suggest_calls"} <= set(owners)
    for table, owner in owners.items():
        assert (ROOT / owner).is_file(), f"owner {owner} of table {table} does not exist"


# Speed benchmarks generate synthetic stores in a temporary folder with bulk SQL (millions of rows):
# they never write a user's store, so the owners' rule does not apply to them.
SYNTHETIC_WRITERS = ("labelfix/bench/speed/",)


def test_only_the_owner_writes_a_table():
    owners = table_owners()
    assert all((ROOT / path).is_file() for path in FIXTURE_WRITERS), "an exempted module no longer exists"
    strays = []
    for path in sorted((ROOT / "labelfix").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in FIXTURE_WRITERS or relative.startswith(SYNTHETIC_WRITERS):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for table in WRITE.findall(line):
                if table in owners and owners[table] != relative:
                    strays.append(f"{relative}:{number} writes {table} (owner: {owners[table]})")
    assert not strays, "\n".join(strays)

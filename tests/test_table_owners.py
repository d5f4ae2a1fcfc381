"""Every store table has one owning module (named in its migration), and only that module writes it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "schemas" / "migrations"
# Speed benchmarks that generate a synthetic store with bulk SQL (never a user's store): they write many
# tables at once by design.
SYNTHETIC_STORE_BUILDERS = {"labelfix/bench/speed/suggest_scale.py", "labelfix/bench/speed/review_queries.py"}
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


def test_only_the_owner_writes_a_table():
    owners = table_owners()
    strays = []
    for path in sorted((ROOT / "labelfix").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in SYNTHETIC_STORE_BUILDERS:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for table in WRITE.findall(line):
                if table in owners and owners[table] != relative:
                    strays.append(f"{relative}:{number} writes {table} (owner: {owners[table]})")
    assert not strays, "\n".join(strays)

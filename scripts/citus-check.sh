#!/usr/bin/env bash
# Keeps docs/sharding.md (how the schema maps onto Citus) true to the schema. Citus is not installable on the
# project's machines, so nothing is distributed here: this reads Migrations/schema.sql (or the file given as the
# first argument) and the two fenced blocks of docs/sharding.md:
#   ```citus-tables   one line per table: name, distributed|reference|local, and for a distributed table the
#                     distribution column when it is not reseller_id;
#   ```citus-changes  one line per change Citus needs: kind, table.name, and a reason.
# It fails (exit 1) when a table of the schema is not classified, a classified table is gone, a class is unknown,
# or the changes it finds differ from the listed ones (a new one unlisted, or a listed one no longer there). The
# changes it finds, by kind:
#   add-column   a distributed table without its distribution column (table.column);
#   nullable     a distributed table whose distribution column may be NULL (Citus refuses NULL there);
#   unique       a primary key, unique constraint or unique index of a distributed table without the column;
#   fk-dist      a foreign key between distributed tables that does not pair the two distribution columns;
#   fk-ref       a foreign key from a reference table to a distributed one (Citus refuses it);
#   fk-local     a foreign key between a local table and a distributed one, or from a reference table to a local one;
#   sequence     a sequence or identity column of a distributed table (one counter across shards and nodes).
# No database, no extra package; well under a second. scripts/test.sh runs it.
set -euo pipefail
SCRIPT_NAME=citus-check
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

SCHEMA=${1:-Sources/ResellerCore/Migrations/schema.sql}
DOC=${CITUS_DOC:-docs/sharding.md}
[ -f "$SCHEMA" ] || die "no schema file $SCHEMA"
[ -f "$DOC" ] || die "no $DOC"

python3 - "$SCHEMA" "$DOC" <<'PYTHON'
import re
import sys

schema_path, doc_path = sys.argv[1], sys.argv[2]
schema = open(schema_path, encoding="utf-8").read()
doc = open(doc_path, encoding="utf-8").read()
problems = []


def split_columns(text):
    """Splits a column list on top-level commas and strips quotes."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return [p.strip('"') for p in parts]


# Tables and their columns (name -> nullable).
tables = {}
# A partitioned table ends with its PARTITION BY clause. Its partitions (the default ones; the monthly ones are not in
# schema.sql) follow their parent and are left out: Citus distributes a partitioned table with its partitions.
partitions = set(re.findall(r"ATTACH PARTITION public\.(\w+) ", schema))
for m in re.finditer(r"^CREATE TABLE public\.(\w+) \((.*?)\n\)(?:\nPARTITION BY [^;]*)?;", schema, re.S | re.M):
    if m.group(1) in partitions:
        continue
    columns = {}
    for line in m.group(2).split("\n"):
        line = line.strip().rstrip(",")
        if not line or line.startswith(("CONSTRAINT", "CHECK", "CASE", "WHEN", "ELSE", "END")):
            continue
        col = re.match(r'^"?(\w+)"? ', line)
        if col:
            columns[col.group(1)] = "NOT NULL" not in line
    tables[m.group(1)] = columns
if not tables:
    sys.exit(f"citus-check: no CREATE TABLE found in {schema_path}")

# Primary keys, unique constraints, unique indexes: (table, name, [columns]).
uniques = []
for m in re.finditer(
    r"ALTER TABLE (?:ONLY )?public\.(\w+)\s+ADD CONSTRAINT (\w+) (?:PRIMARY KEY|UNIQUE) \((.*?)\);", schema
):
    if m.group(1) not in partitions:
        uniques.append((m.group(1), m.group(2), split_columns(m.group(3))))
for m in re.finditer(r"CREATE UNIQUE INDEX (\w+) ON public\.(\w+) USING \w+ \((.*?)\)(?: NULLS NOT DISTINCT)?(?: WHERE .*)?;", schema):
    uniques.append((m.group(2), m.group(1), split_columns(m.group(3))))

# Foreign keys: (table, name, [columns], referenced table, [referenced columns]).
fks = []
for m in re.finditer(
    r"ALTER TABLE (?:ONLY )?public\.(\w+)\s+ADD CONSTRAINT (\w+) FOREIGN KEY \((.*?)\) REFERENCES public\.(\w+)\((.*?)\)",
    schema,
):
    fks.append((m.group(1), m.group(2), split_columns(m.group(3)), m.group(4), split_columns(m.group(5))))

# Sequences: identity columns and sequences owned by a column.
sequences = []
for m in re.finditer(r"ALTER TABLE public\.(\w+) ALTER COLUMN (\w+) ADD GENERATED", schema):
    sequences.append((m.group(1), m.group(2)))
for m in re.finditer(r"ALTER SEQUENCE public\.(\w+) OWNED BY public\.(\w+)\.(\w+);", schema):
    sequences.append((m.group(2), m.group(3)))
for m in re.finditer(r"CREATE SEQUENCE public\.(\w+)", schema):
    if not re.search(rf"ALTER SEQUENCE public\.{m.group(1)} OWNED BY", schema):
        problems.append(f"sequence public.{m.group(1)} belongs to no column: give it one or classify it by hand")


def block(name):
    m = re.search(rf"^```{name}\n(.*?)^```", doc, re.S | re.M)
    if not m:
        sys.exit(f"citus-check: {doc_path} has no ```{name} block")
    return [l for l in (x.split("#", 1)[0].strip() for x in m.group(1).split("\n")) if l]


classes, dist_column = {}, {}
for line in block("citus-tables"):
    fields = line.split()
    if len(fields) not in (2, 3) or fields[1] not in ("distributed", "reference", "local"):
        problems.append(f"citus-tables: cannot read '{line}' (table distributed|reference|local [column])")
        continue
    if fields[0] in classes:
        problems.append(f"citus-tables: {fields[0]} is classified twice")
    classes[fields[0]] = fields[1]
    if fields[1] == "distributed":
        dist_column[fields[0]] = fields[2] if len(fields) == 3 else "reseller_id"
    elif len(fields) == 3:
        problems.append(f"citus-tables: {fields[0]} is {fields[1]}, it has no distribution column")

for t in sorted(set(tables) - set(classes)):
    problems.append(f"table {t} is not classified: add it to the citus-tables block of {doc_path}")
for t in sorted(set(classes) - set(tables)):
    problems.append(f"table {t} is classified but no longer exists: remove it from {doc_path}")

found = {}  # (kind, table.name) -> description
for t, col in dist_column.items():
    if t not in tables:
        continue
    if col not in tables[t]:
        found[("add-column", f"{t}.{col}")] = f"distributed table {t} has no column {col}"
    elif tables[t][col]:
        found[("nullable", f"{t}.{col}")] = f"{t}.{col} may be NULL"
for t, name, cols in uniques:
    if classes.get(t) == "distributed" and dist_column[t] not in cols:
        found[("unique", f"{t}.{name}")] = f"{name} ({', '.join(cols)}) lacks {dist_column[t]}"
for t, name, cols, rt, rcols in fks:
    a, b = classes.get(t), classes.get(rt)
    if a == "distributed" and b == "distributed":
        pairs = list(zip(cols, rcols))
        if (dist_column[t], dist_column[rt]) not in pairs:
            found[("fk-dist", f"{t}.{name}")] = f"{t}({', '.join(cols)}) -> {rt}({', '.join(rcols)})"
    elif a == "reference" and b == "distributed":
        found[("fk-ref", f"{t}.{name}")] = f"reference {t} -> distributed {rt}"
    elif (a, b) in (("local", "distributed"), ("distributed", "local"), ("reference", "local")):
        found[("fk-local", f"{t}.{name}")] = f"{a} {t} -> {b} {rt}"
for t, col in sequences:
    if classes.get(t) == "distributed":
        found[("sequence", f"{t}.{col}")] = f"{t}.{col} draws from one sequence"

listed = {}
for line in block("citus-changes"):
    fields = line.split(None, 2)
    if len(fields) < 3:
        problems.append(f"citus-changes: cannot read '{line}' (kind table.name reason)")
        continue
    key = (fields[0], fields[1])
    if key in listed:
        problems.append(f"citus-changes: {fields[0]} {fields[1]} is listed twice")
    listed[key] = fields[2]

for key in sorted(set(found) - set(listed)):
    problems.append(f"not listed in {doc_path}: {key[0]} {key[1]} ({found[key]})")
for key in sorted(set(listed) - set(found)):
    problems.append(f"listed in {doc_path} but not found in the schema: {key[0]} {key[1]}")

counts = {c: sum(1 for t in tables if classes.get(t) == c) for c in ("distributed", "reference", "local")}
kinds = {}
for kind, _ in found:
    kinds[kind] = kinds.get(kind, 0) + 1
print(
    f"citus-check: {len(tables)} tables ({counts['distributed']} distributed, {counts['reference']} reference, "
    f"{counts['local']} local); {len(found)} changes needed ("
    + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    + ")"
)
if problems:
    for p in problems:
        print(f"citus-check: FAIL {p}")
    sys.exit(1)
print("citus-check: docs/sharding.md matches the schema")
PYTHON

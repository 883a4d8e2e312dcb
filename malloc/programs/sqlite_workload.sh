#!/usr/bin/env bash
# sqlite_workload.sh N: SQL for sqlite3 with N inserts into a table, an
# index, joins, aggregates, updates, deletes and a VACUUM; every query's
# result is printed, so runs on two allocators can be compared.
set -euo pipefail
n=$1
cat <<SQL
PRAGMA journal_mode=DELETE;
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, cat INTEGER, qty INTEGER, note TEXT);
CREATE TABLE cat(id INTEGER PRIMARY KEY, label TEXT);
BEGIN;
SQL
for c in $(seq 0 19); do echo "INSERT INTO cat VALUES($c, 'category-$c');"; done
awk -v n="$n" 'BEGIN {
    s = 12345
    for (i = 1; i <= n; i++) {
        s = (s * 1103515245 + 12345) % 2147483648
        printf "INSERT INTO item(name, cat, qty, note) VALUES(\047item-%d-%d\047, %d, %d, \047%s\047);\n",
               i, s % 997, s % 20, s % 1000, substr("the quick brown fox jumps over the lazy dog", 1 + s % 30)
    }
}'
cat <<SQL
COMMIT;
CREATE INDEX item_cat ON item(cat, qty);
SELECT count(*), sum(qty), min(name), max(name) FROM item;
SELECT c.label, count(*), sum(i.qty), round(avg(i.qty), 3) FROM item i JOIN cat c ON c.id = i.cat GROUP BY c.label ORDER BY c.label;
SELECT name, qty FROM item WHERE cat = 7 ORDER BY qty DESC, id LIMIT 10;
SELECT count(*) FROM item WHERE note LIKE '%fox%';
SELECT group_concat(id) FROM (SELECT id FROM item WHERE qty = 500 ORDER BY id LIMIT 20);
BEGIN;
UPDATE item SET qty = qty + 1, note = note || ' updated' WHERE id % 3 = 0;
DELETE FROM item WHERE id % 7 = 0;
COMMIT;
SELECT count(*), sum(qty), sum(length(note)) FROM item;
WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 200)
SELECT sum(x * x), count(*) FROM r;
SELECT cat, count(DISTINCT qty) FROM item GROUP BY cat ORDER BY cat LIMIT 5;
VACUUM;
PRAGMA integrity_check;
SQL

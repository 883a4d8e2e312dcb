#!/usr/bin/env bash
# check-doc-examples.sh DOC: every code block of DOC (markdown) that follows
# a line `<!-- file: PATH -->` must be PATH's exact content, and every
# ```rust block must follow such a line: the docs show only code that the
# build compiles (PATH relative to the repository root).
set -euo pipefail
doc=$1
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Split DOC into numbered blocks: tmp/N.path holds the marker's PATH (or
# nothing), tmp/N.lang the fence's language, tmp/N.body the lines.
awk -v dir="$tmp" '
    /^<!-- file: .* -->$/ { pending = $3; next }
    !inblock && /^```/ {
        n++; inblock = 1
        lang = substr($0, 4)
        printf "%s", pending > (dir "/" n ".path"); close(dir "/" n ".path")
        printf "%s", lang > (dir "/" n ".lang"); close(dir "/" n ".lang")
        printf "" > (dir "/" n ".body")
        pending = ""; next
    }
    inblock && /^```$/ { inblock = 0; close(dir "/" n ".body"); next }
    inblock { print > (dir "/" n ".body"); next }
    { if ($0 != "") pending = "" }
' "$top/$doc"

fail=0; checked=0
for p in "$tmp"/*.path; do
    [ -e "$p" ] || continue
    n=${p%.path}; path=$(cat "$p"); lang=$(cat "$n.lang")
    if [ -z "$path" ]; then
        case $lang in rust|rust,*)
            echo "$doc: a \`\`\`$lang block has no <!-- file: PATH --> line before it"; fail=1 ;;
        esac
        continue
    fi
    if ! diff -u "$top/$path" "$n.body" >"$tmp/diff"; then
        echo "$doc: the block shown as $path differs from the file:"; cat "$tmp/diff"; fail=1
    fi
    checked=$((checked + 1))
done
[ $fail = 0 ] || exit 1
echo "SHOW $doc: $checked code blocks are exact copies of files the build compiles"

#!/usr/bin/env bash
# check-layers.sh [--self-test] ORDER OBJ...
#
# The core's modules only call down (DESIGN.md, "Layers of the C core").
# ORDER lists the modules lowest layer first (layer 1), layers separated
# by '|', modules of one layer by spaces:
#
#     "hooks | fault | stats | page | early frame | slab tlsf | facade"
#
# OBJ are the object files of one build, named after their modules
# (page.o is module page).  Every symbol an object leaves undefined (nm -u)
# is looked up among the global symbols the others define (nm
# --defined-only); the check fails when the definer is in the same layer
# or a higher one, and names both ends.  Symbols no object defines (memcpy,
# the platform hooks a kernel supplies) are the environment's and fine.
# A module named in ORDER without an object is skipped (not written yet);
# an object whose module ORDER does not name fails: a new module must be
# given its place.
#
# --self-test first proves the check on objects compiled in a temporary
# directory: a downward call passes, an upward call, a call within a layer
# and an unplaced module each fail.  ($CC, default gcc; $NM, default nm.)
set -euo pipefail

NM=${NM:-nm}
CC=${CC:-gcc}

# check_layers ORDER OBJ...: prints the verdict, returns 0 when every call
# goes down.
check_layers() {
    local order=$1; shift
    local -A layer_of=()
    local n=1 group m
    IFS='|' read -r -a groups <<<"$order"
    for group in "${groups[@]}"; do
        for m in $group; do
            if [ -n "${layer_of[$m]+x}" ]; then
                echo "layers: module '$m' named twice in the order: $order"
                return 1
            fi
            layer_of[$m]=$n
        done
        n=$((n + 1))
    done

    local -A module_of=() seen=()
    local bad=0 obj mod sym refs=0
    for obj in "$@"; do
        mod=$(basename "$obj" .o)
        if [ ! -f "$obj" ]; then
            echo "layers: $obj: no such object file"
            bad=1
            continue
        fi
        seen[$mod]=1
        if [ -z "${layer_of[$mod]+x}" ]; then
            echo "layers: $mod.o: module '$mod' has no place in the layer order; add it to: $order"
            bad=1
        fi
        while read -r sym; do
            # The first definer is kept: two strong ones would not link.
            [ -n "${module_of[$sym]+x}" ] || module_of[$sym]=$mod
        done < <($NM -g --defined-only "$obj" | awk 'NF == 3 {print $3}')
    done

    local user_layer def def_layer
    for obj in "$@"; do
        mod=$(basename "$obj" .o)
        [ -f "$obj" ] && [ -n "${layer_of[$mod]+x}" ] || continue
        user_layer=${layer_of[$mod]}
        while read -r sym; do
            def=${module_of[$sym]-}
            [ -n "$def" ] && [ "$def" != "$mod" ] || continue
            [ -n "${layer_of[$def]+x}" ] || continue
            refs=$((refs + 1))
            def_layer=${layer_of[$def]}
            if [ "$def_layer" -gt "$user_layer" ]; then
                echo "layers: $mod.o needs $sym from $def.o: $mod (layer $user_layer) calls up into $def (layer $def_layer)"
                bad=1
            elif [ "$def_layer" -eq "$user_layer" ]; then
                echo "layers: $mod.o needs $sym from $def.o: $mod and $def share layer $user_layer and must not call each other"
                bad=1
            fi
        done < <($NM -u "$obj" | awk '$1 == "U" {print $2}' | sort -u)
    done

    local skipped=()
    for m in "${!layer_of[@]}"; do
        [ -n "${seen[$m]+x}" ] || skipped+=("$m")
    done
    [ ${#skipped[@]} -eq 0 ] || echo "layers: no object yet for: $(printf '%s\n' "${skipped[@]}" | sort | tr '\n' ' ')(skipped)"
    if [ $bad -ne 0 ]; then
        echo "layers: FAILED; order, lowest first: $order"
        return 1
    fi
    echo "layers: $# objects, $refs references between modules, all downward; order: $order"
}

self_test() {
    local dir
    dir=$(mktemp -d)
    printf 'int low_fn(void);\nint low_fn(void) { return 1; }\n' >"$dir/low.c"
    printf 'int low_fn(void);\nint high_fn(void);\nint high_fn(void) { return low_fn() + 1; }\n' >"$dir/high.c"
    printf 'int high_fn(void);\nint up_fn(void);\nint up_fn(void) { return high_fn(); }\n' >"$dir/up.c"
    printf 'int low_fn(void);\nint side_fn(void);\nint side_fn(void) { return low_fn(); }\n' >"$dir/side.c"
    local f
    for f in low high up side; do
        "$CC" -c "$dir/$f.c" -o "$dir/$f.o"
    done
    local out ok=1
    # expect PASS|FAIL DESCRIPTION PATTERN ORDER OBJ...
    expect() {
        local want=$1 what=$2 pattern=$3 order=$4; shift 4
        local rc=0
        out=$(check_layers "$order" "$@") || rc=$?
        if { [ "$want" = PASS ] && [ $rc -eq 0 ]; } ||
           { [ "$want" = FAIL ] && [ $rc -ne 0 ] && grep -q -- "$pattern" <<<"$out"; }; then
            echo "self-test ok: $what"
        else
            echo "self-test WRONG: $what (expected $want, exit $rc):"
            sed 's/^/    /' <<<"$out"
            ok=0
        fi
    }
    expect PASS "a call down passes" "" "low | high" "$dir/low.o" "$dir/high.o"
    expect PASS "a module without an object is skipped" "" "low | missing | high" "$dir/low.o" "$dir/high.o"
    expect FAIL "a call up fails" "up.o needs high_fn from high.o" "low up | high" \
        "$dir/low.o" "$dir/high.o" "$dir/up.o"
    expect FAIL "a call within a layer fails" "high.o needs low_fn from low.o" "low high" \
        "$dir/low.o" "$dir/high.o"
    expect FAIL "an unplaced module fails" "'side' has no place" "low | high" \
        "$dir/low.o" "$dir/high.o" "$dir/side.o"
    rm -rf "$dir"
    [ $ok -eq 1 ]
}

if [ "${1-}" = --self-test ]; then
    shift
    self_test || { echo "layers: the self-test failed: the check itself is broken"; exit 2; }
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 [--self-test] ORDER OBJ..." >&2
    exit 2
fi
check_layers "$@"

#!/usr/bin/env bash
# gen_c_file.sh N: a C program of N generated functions (loops, structs,
# switch statements) for gcc to compile; it prints one checksum per function.
set -euo pipefail
n=$1
# No #include: the checked build pays a heap walk for each of the tens of
# thousands of allocations cc1 makes parsing stdio.h.
cat <<'C'
typedef __SIZE_TYPE__ size_t;
int printf(const char *, ...);
int snprintf(char *, size_t, const char *, ...);
size_t strlen(const char *);
struct acc { unsigned long sum; unsigned long mix; char tag[16]; };
C
for i in $(seq 1 "$n"); do
    cat <<C
static unsigned long f$i(struct acc *a, unsigned long x)
{
    unsigned long t[8];
    for (int k = 0; k < 8; k++)
        t[k] = x * $((i * 2654435761 % 4093)) + (unsigned long)k * $i;
    switch (x % 5) {
    case 0: a->sum += t[1] ^ t[2]; break;
    case 1: a->sum += t[3] * 3u; break;
    case 2: a->mix ^= t[4] << ($i % 13); break;
    default: a->mix += t[5] + t[6] + t[7]; break;
    }
    snprintf(a->tag, sizeof a->tag, "f%d:%lu", $i, x % 97);
    return a->sum ^ a->mix ^ strlen(a->tag);
}
C
done
echo 'int main(void)'
echo '{'
echo '    struct acc a = { 0, 0, "" };'
echo '    unsigned long x = 1;'
for i in $(seq 1 "$n"); do echo "    x = f$i(&a, x + $i); printf(\"%d %lu\\n\", $i, x);"; done
echo '    return 0;'
echo '}'

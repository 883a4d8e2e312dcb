"""Collections-heavy workload for the malloc front end: dicts, sets, lists,
deques, Counters, heaps, sorting, strings, JSON.  Prints digests only, so a
run on hartalloc and a run on glibc must print the same lines.

usage: collections_workload.py N   (N scales every structure)
"""
import collections
import heapq
import sys


def digest(obj):
    # Deterministic under PYTHONHASHSEED=0, and needs no import: the checked
    # build pays a heap walk for every allocation an import makes.
    return format(hash(repr(obj)) & 0xFFFFFFFFFFFF, "012x")


class Lcg:
    """A fixed-seed generator that imports nothing (random pulls in hashlib)."""

    def __init__(self, seed):
        self.state = seed

    def below(self, n):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.state >> 33) % n

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def random(self):
        return self.below(1 << 30) / (1 << 30)


def main():
    n = int(sys.argv[1])
    seed = 20240606
    print(f"seed {seed} n {n}")
    rng = Lcg(seed)

    words = ["".join(rng.choice("abcdefghij") for _ in range(1 + rng.below(12))) for _ in range(n)]
    counts = collections.Counter(words)
    print("counter", len(counts), digest(sorted(counts.most_common(20))))

    index = collections.defaultdict(list)
    for i, w in enumerate(words):
        index[w[0]].append(i)
    print("defaultdict", digest(sorted((k, len(v), sum(v)) for k, v in index.items())))

    d = {}
    for i in range(n):
        d[f"key{i}"] = [i] * (i % 7)
        if i % 3 == 0:
            del d[f"key{i // 2}"]
    print("dict churn", len(d), digest(sorted(d)[:50]))

    s = set()
    for i in range(n):
        s.add(rng.below(n * 4))
        if i % 5 == 0:
            s.discard(rng.below(n * 4))
    print("set", len(s), digest(sorted(s)[:100]))

    dq = collections.deque(maxlen=n // 3 + 1)
    for i in range(n):
        dq.append((i, str(i)))
        if i % 4 == 0:
            dq.appendleft(i)
        if i % 9 == 0 and dq:
            dq.pop()
    print("deque", len(dq), digest(list(dq)[:100]))

    od = collections.OrderedDict()
    for i in range(n):
        od[i % 997] = i
        od.move_to_end(i % 13)
    print("ordereddict", len(od), digest(list(od.items())))

    heap = []
    for i in range(n):
        heapq.heappush(heap, (rng.random(), i))
    smallest = [heapq.heappop(heap)[1] for _ in range(min(100, len(heap)))]
    print("heap", digest(smallest))

    Point = collections.namedtuple("Point", "x y z")
    pts = sorted(Point(rng.below(100), rng.below(100), i) for i in range(n))
    print("namedtuple sort", digest(pts[:: max(1, n // 100)]))

    text = " ".join(words)
    parts = text.split("a")
    joined = "|".join(p.upper()[::-1] for p in parts)
    print("strings", len(joined), digest(joined[:1000]))

    if n >= 1000:  # the larger runs also take JSON through its C encoder
        import json

        tree = {"items": [{"id": i, "tags": words[i: i + 3], "sub": {"v": i * 1.5}} for i in range(n // 4)]}
        blob = json.dumps(tree, sort_keys=True)
        back = json.loads(blob)
        print("json", len(blob), back == tree, digest(blob))

    big = [bytearray(1 + rng.below(20000)) for _ in range(n // 50 + 1)]
    for b in big:
        b.extend(b"x" * (len(b) // 2))
    print("bytearrays", sum(len(b) for b in big))


if __name__ == "__main__":
    main()

"""The storage cost model: what each kind of MongoDB operation the services use costs on a server,
at a given collection size, for FerretDB's backends side by side (or MongoDB).

    .venv/bin/python -m benchmarks.backend_costs postgresql=mongodb://127.0.0.1:27017 \\
        sqlite=mongodb://127.0.0.1:27018 --docs 20000

`make bench` leaves the PostgreSQL-backed stack and a SQLite-backed FerretDB beside it only while
it runs; start a SQLite one by hand for this (`-handler=sqlite`, see deploy/local/stack.py) or
compare two stacks. Each server gets a scratch database of its own, dropped at the end. Figures
are printed, never asserted; deploy/README.md's cost model quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shared.mongo import create_mongo_client
from shared.settings import MongoSettings

SUBJECTS = 200


def observation(n: int) -> dict[str, Any]:
    """About the size of a stored observation."""
    return {
        "_id": f"e{n}",
        "subject_id": f"k{n % SUBJECTS}",
        "as_of": f"2024-{1 + n % 12:02d}-01",
        "value": float(n),
        "pad": "x" * 300,
    }


async def timed_ms(repeat: int, call: Callable[[int], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for i in range(repeat):
        await call(i)
    return (time.perf_counter() - started) / repeat * 1000


async def measure(url: str, docs: int) -> dict[str, float]:
    client = create_mongo_client(MongoSettings(url=url, database="admin"), app_name="bench-costs")
    database = client[f"bench_costs_{secrets.token_hex(3)}"]
    collection = database["observations"]
    rng = random.Random(7)
    out: dict[str, float] = {}
    try:
        await collection.create_index([("subject_id", 1), ("as_of", 1)])
        documents = [observation(n) for n in range(docs)]
        started = time.perf_counter()
        for start in range(0, docs, 500):
            await collection.insert_many(documents[start : start + 500], ordered=False)
        out["insert_many (500 per call), docs/s"] = docs / (time.perf_counter() - started)

        async def writer(w: int) -> None:
            for i in range(50):
                await collection.insert_one({"_id": f"w{w}-{i}", "subject_id": "k1", "value": 1.0})

        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(8)))
        out["insert_one, 8 concurrent writers, /s"] = 400 / (time.perf_counter() - started)
        out["find_one by _id, ms"] = await timed_ms(
            50, lambda _: collection.find_one({"_id": f"e{rng.randrange(docs)}"})
        )
        out["update_one by _id, ms"] = await timed_ms(
            20,
            lambda _: collection.update_one(
                {"_id": f"e{rng.randrange(docs)}"}, {"$set": {"value": 2.0}}
            ),
        )
        out[f"find by indexed subject_id ({docs // SUBJECTS} hits), ms"] = await timed_ms(
            10,
            lambda _: collection.find({"subject_id": f"k{rng.randrange(SUBJECTS)}"}).to_list(None),
        )
        out["find_one_and_update (lease claim), ms"] = await timed_ms(
            10,
            lambda _: collection.find_one_and_update(
                {"subject_id": "k3", "value": {"$gte": 0}}, {"$inc": {"value": 1}}
            ),
        )
        out["delete_many by _id $in (100), ms"] = await timed_ms(
            5,
            lambda i: collection.delete_many(
                {"_id": {"$in": [f"e{n}" for n in range(i * 100, i * 100 + 100)]}}
            ),
        )
    finally:
        await client.drop_database(database.name)
        await client.close()
    return out


async def run(targets: list[tuple[str, str]], docs: int) -> None:
    results = {}
    for name, url in targets:
        print(f"[costs] {name}: {docs:,} documents at {url}", flush=True)
        results[name] = await measure(url, docs)
    names = [name for name, _ in targets]
    rows = list(next(iter(results.values())))
    width = max(len(row) for row in rows)
    print(f"\n{'operation':<{width}}  " + "  ".join(f"{n:>11}" for n in names))
    for row in rows:
        print(f"{row:<{width}}  " + "  ".join(f"{results[n][row]:>11,.1f}" for n in names))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("servers", nargs="+", help="name=mongodb://host:port, one per server")
    parser.add_argument("--docs", type=int, default=20_000, help="collection size")
    args = parser.parse_args(argv)
    targets = []
    for server in args.servers:
        name, _, url = server.partition("=")
        if not url:
            parser.error(f"{server!r}: expected name=mongodb://host:port")
        targets.append((name, url))
    asyncio.run(run(targets, args.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

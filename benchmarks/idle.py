"""What ws_idle.py and tls_idle.py share: the server's RSS, read until it settles, the
slope between two stages of open connections, and the rounds and report."""
from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from typing import Any, Awaitable, Callable


def rss_kib(group: int) -> int:
    """RSS of every process in the server's process group (granian serves from a child)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != group:  # pgrp
                continue
            with open(f"/proc/{entry}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


async def settled_rss(group: int) -> int:
    """RSS once it stops moving (bounded wait): lets the server finish its bookkeeping."""
    last, deadline = rss_kib(group), time.monotonic() + 5
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = rss_kib(group)
        if abs(now - last) < 64:
            return now
        last = now
    return last


async def slope(group: int, total: int, open_one: Callable[[], Awaitable[Any]],
                close: Callable[[Any], None], batch: int = 100) -> float:
    """KiB per connection: RSS after ``total`` minus after a tenth of them (at least 50)."""
    first = max(total // 10, 50)
    held: list[Any] = []
    try:
        while len(held) < first:
            held += await asyncio.gather(*(open_one() for _ in range(min(batch, first - len(held)))))
        before = await settled_rss(group)
        while len(held) < total:
            held += await asyncio.gather(*(open_one() for _ in range(min(batch, total - len(held)))))
        after = await settled_rss(group)
        return (after - before) / (total - first)
    finally:
        for item in held:
            close(item)


def rounds_and_report(names: list[str], found: dict, rounds: int, total: int, what: str,
                      measure: Callable[[Any], float | str]) -> None:
    """Alternate the servers for ``rounds`` rounds and print the medians as a table."""
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        for name in names:
            value = measure(found[name])
            if isinstance(value, str):
                print(f"{name}: {value}", file=sys.stderr)
                continue
            results[name].append(value)
            print(f"round {round_number} {name}: {value:.2f} KiB", file=sys.stderr)
    print(f"\n{total} {what}, RSS slope between {max(total // 10, 50)} and {total}; "
          f"median of {rounds} rounds\n")
    print(f"| server | version | KiB per {what.split(',')[0].removeprefix('idle ').rstrip('s')} | rounds |")
    print("|---|---|---|---|")
    for name in names:
        values = results[name]
        median = f"{statistics.median(values):.1f}" if values else "failed"
        print(f"| {name} | {found[name].version} | {median} | "
              f"{' / '.join(f'{v:.1f}' for v in values)} |")

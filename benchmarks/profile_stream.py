"""Profile the end-to-end stream path with pyinstrument (not part of `make bench`).

    python -m benchmarks.profile_stream [--events 100000] [--runs 3] [--out DIR]

1. Two processes: the server (with the producer inside, as a job handler) runs under
   pyinstrument while the lean client reads `runs` x `events` events from one job; the
   server's profile is written to DIR/profile_server.txt.
2. One process (server, producer and `JobClient` on one loop): DIR/profile_one_process.txt.

docs/PERFORMANCE.md summarises what these show.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from ._server_process import ServerProcess
from .bench_stream import _one_process, _one_stream


async def _server_profile(out: Path, events: int, runs: int) -> list[float]:
    rates = []
    async with ServerProcess("ours", "--profile", str(out)) as server:
        for _ in range(runs):
            rate, problems = await _one_stream(server, events)
            assert not problems, problems
            rates.append(rate)
    return rates


async def _one_process_profile(events: int) -> tuple[float, str]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    rate, problems = await _one_process(events, "jobclient")
    profiler.stop()
    assert not problems, problems
    return rate, profiler.output_text(unicode=True, timeline=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server_out = args.out / "profile_server.txt"
    rates = asyncio.run(_server_profile(server_out, args.events, args.runs))
    print(f"server profile ({', '.join(f'{r:,.0f}' for r in rates)} ev/s): {server_out}")
    one_out = args.out / "profile_one_process.txt"
    rate, text = asyncio.run(_one_process_profile(args.events))
    one_out.write_text(text, encoding="utf-8")
    print(f"one-process profile ({rate:,.0f} ev/s): {one_out}")


if __name__ == "__main__":
    main()

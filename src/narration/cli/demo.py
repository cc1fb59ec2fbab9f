"""`narration demo`: a queen and a hive as child processes, three jobs through the keeper, and
one correlation id seen across every service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from ..events import NarrationEvent
from ..services.operations import Operation, OperationModel
from .keeper import EXIT_CANCELLED, EXIT_DONE, EXIT_ERROR, keep, run
from .render import Printer

__all__ = ["DEMO_MODEL", "DEMO_PROMPT", "run_demo"]

DEMO_MODEL = "tinyllama-1.1b"
DEMO_PROMPT = "Why is the sky blue?"


def run_demo(console: Console, *, tokens: int = 12, ids: bool = False) -> int:
    """The demo; its exit code (0 when every job was done and every event carried the ids)."""
    from .._process import ServiceProcess, free_port

    hive_service = ServiceProcess("hive", ["hive", "--id", "localhost"])
    queen_service = ServiceProcess(
        "queen",
        ["queen", "--hive", f"localhost={hive_service.url}"],
        port=free_port(exclude={hive_service.port}),
    )
    services = (hive_service, queen_service)
    console.print(Text("narration demo: keeper -> queen -> hive -> worker", "bold"))
    code = EXIT_ERROR
    try:
        for service in services:
            service.start()
        for service in services:
            service.wait_healthy(20.0)
            console.print(
                Text(f"  started {service.name:<6} {service.url}  (pid {service.pid})", "dim")
            )
        correlation_id = f"demo-{uuid.uuid4().hex[:12]}"
        console.print(Text(f"  correlation id for every job: {correlation_id}", "dim"))
        code = run(_demo_jobs(console, queen_service.url, correlation_id, tokens, ids))
    except KeyboardInterrupt:
        code = EXIT_CANCELLED
    except (OSError, RuntimeError, TimeoutError) as exc:
        console.print(Text(f"✖ {exc}", "bold red"))
    finally:
        console.print(Text("Shutting down the queen and the hive …", "dim"))
        for service in reversed(services):
            service.stop()
            service.remove_log()
    console.print(Text("demo finished" if code == 0 else f"demo failed (exit {code})", "bold"))
    return code


async def _demo_jobs(
    console: Console, queen_url: str, correlation_id: str, tokens: int, ids: bool
) -> int:
    operations: list[OperationModel] = [
        Operation.hive_list(),
        Operation.worker_spawn("localhost", DEMO_MODEL, "cpu"),
        Operation.infer("localhost", DEMO_MODEL, DEMO_PROMPT, max_tokens=tokens),
    ]
    seen: list[NarrationEvent] = []
    for operation in operations:
        console.print()
        console.rule(Text(f"keeper -> queen: {operation.name}", "bold"), align="left")
        printer = Printer(console, ids, keep=True)
        code = await keep(queen_url, operation.to_dict(), printer, correlation_id=correlation_id)
        if code != EXIT_DONE:
            return code
        console.print(Text("  " + _ids_summary(printer.events), "dim"))
        seen.extend(printer.events)
    console.print()
    correlations = {event.correlation_id for event in seen}
    if correlations != {correlation_id}:
        console.print(Text(f"✖ events carried other correlation ids: {correlations}", "bold red"))
        return EXIT_ERROR
    actors = list(dict.fromkeys(event.actor for event in seen))
    console.print(
        Text(
            f"✔ {len(operations)} jobs, {len(seen)} events from {', '.join(actors)}; every one "
            f"carried correlation id {correlation_id}",
            "bold green",
        )
    )
    return EXIT_DONE


def _ids_summary(events: Sequence[NarrationEvent]) -> str:
    """`12 events · actors queen, hive · 1 trace 4bf92f35… · job job-…` for one job."""
    actors = list(dict.fromkeys(event.actor for event in events))
    traces = list(dict.fromkeys(event.trace_id for event in events if event.trace_id))
    jobs = list(dict.fromkeys(event.job_id for event in events if event.job_id))
    trace = f"trace {traces[0][:8]}…" if len(traces) == 1 else f"{len(traces)} traces"
    return f"└ {len(events)} events · actors {', '.join(actors)} · {trace} · job {', '.join(jobs)}"

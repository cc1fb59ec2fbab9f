"""The worker: a stand-in for an inference engine, run by the hive as a child process.

It loads no model and runs no neural network. It narrates a start-up, a simulated model load
and fake, prompt-driven token generation as JSONL on stdout (`NARRATION_OUTPUT=jsonl`, set by
the hive through `child_env()`), so the hive has a real child process whose narration it
captures into its job. Its ids (job, correlation, trace) come from the environment via
`narration.init_from_env()`.

    python -m narration.services.worker --model tinyllama --prompt "Why is the sky blue?"

Test knobs, also read from the environment so that setting them on a hive process reaches every
worker it starts: `--fail-with CODE` / `NARRATION_WORKER_FAIL=CODE` (exit with CODE before
generating, with a message on stderr) and `--token-delay S` / `NARRATION_WORKER_TOKEN_DELAY=S`
(seconds per generated token, default 0.02).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

import narration
from narration import Level, environment, n, narration_context

__all__ = ["DEFAULT_TOKEN_DELAY", "fake_tokens", "main"]

DEFAULT_TOKEN_DELAY = 0.02
"""Seconds per generated token: fast, but slow enough to watch the stream move."""

FAIL_ENV = "NARRATION_WORKER_FAIL"
TOKEN_DELAY_ENV = "NARRATION_WORKER_TOKEN_DELAY"

_LOAD_STEPS = (
    "Reading the model card of {model}",
    "Reserving {kind} memory on device {device}",
    "Mapping the weights (simulated, nothing is read)",
    "Warming up the sampler",
)
_LOAD_STEP_DELAY = 0.01


def fake_tokens(prompt: str, max_tokens: int) -> list[str]:
    """The words the stand-in 'generates' for `prompt`: at most `max_tokens` of them.

    Deterministic and prompt-driven (it quotes the prompt's first words), ending by itself
    like a model reaching its end-of-sequence token.
    """
    words = re.findall(r"\w+", prompt)[:6] or ["nothing"]
    answer = (
        f"A simulated answer about {' '.join(words)}: no model ran here, these words only "
        "show narration travelling from the worker through the hive and the queen to you."
    )
    return answer.split()[:max_tokens]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m narration.services.worker",
        description=(
            "A STAND-IN for an inference engine, not a real model: it loads nothing and runs "
            "no neural network. It narrates a start-up, a simulated model load and fake, "
            "prompt-driven tokens as JSONL events, for the narration reference services "
            "(the hive runs it as a child process) and their tests."
        ),
        epilog=(
            f"Environment: {FAIL_ENV}=CODE and {TOKEN_DELAY_ENV}=SECONDS set the defaults of "
            "--fail-with and --token-delay; the hive passes its environment on, so setting "
            "them on a hive affects every worker it starts. NARRATION_JOB_ID, "
            "NARRATION_CORRELATION_ID and TRACEPARENT (set by the hive) tie the events to "
            "the hive's job."
        ),
    )
    parser.add_argument("--model", default="stand-in-model", help="model name to pretend to load")
    parser.add_argument("--kind", default="cpu", help="worker kind (cpu, cuda, metal, ...)")
    parser.add_argument("--device", type=int, default=0, help="device number")
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", help="generate fake tokens for this prompt")
    prompt.add_argument("--prompt-file", help="read the prompt from this file (long prompts)")
    parser.add_argument(
        "--max-tokens", type=int, default=256, help="stop after this many tokens (default 256)"
    )
    parser.add_argument(
        "--check", action="store_true", help="only run the engine self-test (no model load)"
    )
    parser.add_argument(
        "--token-delay",
        type=float,
        default=None,
        help=f"seconds per token (default ${TOKEN_DELAY_ENV} or {DEFAULT_TOKEN_DELAY})",
    )
    parser.add_argument(
        "--fail-with",
        type=int,
        default=None,
        metavar="CODE",
        help=f"exit with CODE before generating, as a crash would (default ${FAIL_ENV})",
    )
    return parser


def _from_env(parser: argparse.ArgumentParser, name: str, convert: Any) -> Any:
    """The env value `name` converted, None when unset; a bad value is a usage error."""
    raw = (environment.get(name) or "").strip()
    if not raw:
        return None
    try:
        return convert(raw)
    except ValueError:
        parser.error(f"{name}={raw!r} is not a valid {convert.__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in worker; the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    fail_with = args.fail_with
    if fail_with is None:
        fail_with = _from_env(parser, FAIL_ENV, int)
    delay = args.token_delay
    if delay is None:
        delay = _from_env(parser, TOKEN_DELAY_ENV, float)
    if delay is None:
        delay = DEFAULT_TOKEN_DELAY
    if delay < 0 or args.max_tokens < 1 or args.device < 0:
        parser.error("--token-delay must be >= 0, --max-tokens >= 1 and --device >= 0")
    prompt: str | None = args.prompt
    if args.prompt_file is not None:
        with open(args.prompt_file, encoding="utf-8") as file:
            prompt = file.read()

    narration.init_from_env()
    with narration_context(actor="worker"):
        try:
            return _run(args, prompt, delay, fail_with)
        finally:
            narration.flush()
            _quiet_broken_stdout()


def _quiet_broken_stdout() -> None:
    """If the reader of stdout went away, exit without a BrokenPipeError traceback."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _run(args: argparse.Namespace, prompt: str | None, delay: float, fail_with: int | None) -> int:
    parent = os.getppid()
    started = time.perf_counter()
    n(
        "startup",
        "Worker {} starting: {} engine on device {} (a stand-in, no real model)",
        os.getpid(),
        args.kind,
        args.device,
        pid=os.getpid(),
        kind=args.kind,
        device=args.device,
    )
    if args.check:
        n("self_test", "Engine self-test passed: Python {}", sys.version.split()[0])
    else:
        total = len(_LOAD_STEPS)
        for step, text in enumerate(_LOAD_STEPS, 1):
            n(
                "model_load",
                "[{}/{}] {}",
                step,
                total,
                text.format(model=args.model, kind=args.kind, device=args.device),
                model=args.model,
                kind=args.kind,
                device=args.device,
            )
            time.sleep(_LOAD_STEP_DELAY)
        elapsed_ms = (time.perf_counter() - started) * 1000
        n("model_ready", "Model {} ready in {:.0f} ms", args.model, elapsed_ms, model=args.model)
    if fail_with is not None and fail_with != 0:
        n("crash", "Engine crashed (simulated, exit code {})", fail_with, level=Level.ERROR)
        print(f"worker: simulated failure, exiting with code {fail_with}", file=sys.stderr)
        return int(fail_with)
    if prompt is None:
        return 0
    tokens = fake_tokens(prompt, args.max_tokens)
    n(
        "generate",
        "Generating up to {} tokens for a {}-character prompt",
        args.max_tokens,
        len(prompt),
        max_tokens=args.max_tokens,
    )
    begin = time.perf_counter()
    for index, token in enumerate(tokens):
        if os.getppid() != parent:  # the hive that started us is gone: nobody is listening
            print("worker: parent process went away; stopping", file=sys.stderr)
            return 3
        n("token", "{}", token, index=index)
        if delay:
            time.sleep(delay)
    seconds = time.perf_counter() - begin
    rate = len(tokens) / seconds if seconds > 0 else float(len(tokens))
    n(
        "generated",
        "Generated {} tokens in {:.0f} ms ({:.0f} tokens/s): {}",
        len(tokens),
        seconds * 1000,
        rate,
        " ".join(tokens),
        tokens=len(tokens),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

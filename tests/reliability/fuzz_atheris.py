"""Coverage-guided fuzzing of the markdown parsers with atheris (libFuzzer).

    python tests/reliability/fuzz_atheris.py -runs=20000 -max_len=4096

Run by ``test_fuzz.py::test_atheris_harness`` when atheris is installed (it is not a project
dependency). Each input picks a format and becomes its text (invalid UTF-8 replaced, as the
store reads files); the parser must return a model that renders and parses again, or raise
CorruptData. Anything else is a crash that libFuzzer reports with the input that caused it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from agentcoord.errors import CorruptData
    from agentcoord.store.markdown.codec.agent import parse_agent, render_agent
    from agentcoord.store.markdown.codec.context import parse_context, render_context
    from agentcoord.store.markdown.codec.event import parse_events, render_events
    from agentcoord.store.markdown.codec.task import parse_task, render_task

T0 = 1_760_000_000.0
SEEDS = (
    "# Task: x\n\n**Task ID**: t1\n**Status**: in_progress\n**Assigned Agent**: a1\n"
    "**Epoch**: 1\n**Lease Expires**: 2025-10-09T09:03:20Z\n**Lease Duration**: 600s\n"
    "**Attempts**: 0/3\n\n## Timeline\n\n- **Created**: 2025-10-09T08:53:20Z\n\n"
    "## Progress\n\n- **Current**: 35% (35/100 steps)\n\n## Metrics\n\n```json\n{}\n```\n\n"
    "## Dependencies\n\n- ✅ dep (d1) - COMPLETE\n\n## Logs\n\n```\n[2025-10-09 08:53:20] hi\n```\n",
    "# Agent: a1\n\n**Status**: BUSY\n**Last Updated**: 2025-10-09T08:53:20Z\n"
    "**Workload**: 85%\n\n## Active Tasks\n\n### Task: x (p)\n- **Task ID**: t1\n"
    "- **Progress**: 35% (35/100 steps)\n\n## Circuit Breaker\n\n- **State**: CLOSED\n",
    "# Ch Events Log\n\nLast updated: 2025-10-09T08:53:20Z\n**Last Seq**: 1\n\n---\n\n"
    "## Event: tick\n**Seq**: 1\n**Time**: 2025-10-09T08:53:20.500Z\n**Step**: 1\n\n---\n",
    '# Context\n\n**Project**: p1\n**Domain**: data\n\n## Data\n\n```json\n{"a": 1}\n```\n',
)


def _task(text: str) -> None:
    render_task(parse_task(text, "/ws/task-t1.md"), T0)


def _agent(text: str) -> None:
    render_agent(parse_agent(text, "/ws/agent-a1.md"), T0)


def _events(text: str) -> None:
    log = parse_events(text, "/ws/events-ch.md", "ch")
    render_events("ch", log.events, last_seq=log.last_seq, updated=T0)


def _context(text: str) -> None:
    render_context(parse_context(text, "/ws/context-p1-data.md"))


TARGETS = (_task, _agent, _events, _context)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, len(TARGETS) - 1)
    mode = fdp.ConsumeIntInRange(0, 2)
    body = fdp.ConsumeBytes(fdp.remaining_bytes()).decode("utf-8", "replace")
    if mode == 0:  # mutate around a valid file of the chosen format
        seed = SEEDS[which]
        cut = len(body) % (len(seed) + 1)
        body = seed[:cut] + body + seed[cut:]
    elif mode == 1:
        body = SEEDS[which] + body
    try:
        TARGETS[which](body)
    except CorruptData:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Generated coverage: for every transition of a machine, the shortest run of stimuli (jobs,
events, clock moves, `bash` outcomes) that takes it from the initial state; each run is
played in the harness against the real engine and store, and reported as covered, failed,
unreachable, or not generated (an action whose outcome cannot be arranged, e.g. custom)."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from statemachine_engine.config import load_definition
from statemachine_engine.config.model import WILDCARD, ActionSpec, MachineDefinition, Transition
from statemachine_engine.config.placeholder_syntax import parse_key, tokens
from statemachine_engine.core.loader import ActionLoader, default_actions_dirs
from statemachine_engine.core.transitions import decide
from statemachine_engine.testing.harness import MachineHarness

#: Built-ins that always return the same event (their `success`, or nothing).
_FIXED = frozenset(
    {
        "log",
        "activity_log",
        "set_context",
        "add_to_list",
        "send_event",
        "complete_job",
        "fail_job",
        "clear_events",
        "sleep",
    }
)
#: Stimuli that need the test to act (the others follow by themselves).
TRIGGERS = ("event", "timer")
#: Seconds a generated run may take to settle after a stimulus (all on the virtual clock;
#: a machine still busy then is judged by the transitions it took).
SETTLE = 5.0
#: Placeholder roots under which a job's data or an event's payload is read.
_DATA_ROOTS = {"data": "data", "current_job": "data", "payload": "payload", "event_data": "payload"}


@dataclass(frozen=True)
class Bash:
    """The result planned for one `bash` action of a state (its index among the state's
    `bash` actions)."""

    index: int
    exit_code: int = 0
    timed_out: bool = False


@dataclass(frozen=True)
class Outcome:
    """One way an action can end: the event it returns (None: nothing), whether that is a
    failure, and what makes it so (a `bash` result, a job in the queue, none)."""

    event: str | None
    failure: bool = False
    bash: Bash | None = None
    needs_job: bool = False


@dataclass(frozen=True)
class Step:
    """How one transition is taken: `kind` is `auto` (the state's actions fire it), `job`
    (a job must be waiting when the state is entered), `event` (sent by the test), `timer`
    (the clock moved by its timeout) or `park` (an idle self-transition: the machine parks);
    `bash` lists the results of the state's `bash` actions on the way."""

    transition: Transition
    source: str
    kind: str
    bash: tuple[Bash, ...] = ()
    job_type: str | None = None

    @property
    def label(self) -> str:
        t = self.transition
        return f"{self.source} --{t.event}--> {t.target}"


@dataclass
class Result:
    """What generated coverage found for one transition."""

    transition: Transition
    status: str  # covered, failed, unreachable, not generated
    path: tuple[Step, ...] = ()
    detail: str = ""

    @property
    def label(self) -> str:
        t = self.transition
        return f"{t.source} --{t.event}--> {t.target}"


@dataclass
class Report:
    """Generated coverage of one machine definition."""

    source: str
    results: list[Result] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def ok(self) -> bool:
        """No transition failed and none is unreachable (not generated ones are listed)."""
        return not any(r.status in ("failed", "unreachable") for r in self.results)


def samples(definition: MachineDefinition) -> dict[str, dict[str, object]]:
    """Job data and event payload that give every `{data.x}` / `{payload.x}` path the
    machine reads (placeholders and `context_map`) a value of its declared kind."""
    found: dict[str, dict[str, object]] = {"data": {}, "payload": {}}

    def put(path: str, kind: str | None) -> None:
        parts = path.split(".")
        if (parts[0] == "current_job" and parts[1:2] == ["data"]) or (
            parts[0] == "event_data" and parts[1:2] == ["payload"]
        ):
            parts = parts[1:]
        if parts[0] not in _DATA_ROOTS or len(parts) < 2:
            return
        node = found[_DATA_ROOTS[parts[0]]]
        for part in parts[1:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                return
            node = child
        node.setdefault(parts[-1], 1 if kind == "int" else ("x" if kind == "ident" else "x1"))

    for specs in definition.entry_actions.values():
        for spec in specs:
            for text in spec.strings():
                for token in tokens(text):
                    if token.is_key:
                        key = parse_key(token.text)
                        for path in key.paths:
                            put(path, key.kind)
    for event in definition.events.values():
        for path in event.context_map.values():
            put(path, None)
    return found


class Planner:
    """Works out, from the definition alone, how each transition can be made to fire."""

    def __init__(self, definition: MachineDefinition, catalog: ActionLoader) -> None:
        self.d = definition
        self.catalog = catalog

    def outcomes(self, spec: ActionSpec) -> list[Outcome] | None:
        """The outcomes of an action that a test can arrange; None when it cannot."""
        params = spec.params
        if spec.type == "bash":
            found = [
                Outcome(str(params.get("success", "job_done")), bash=Bash(0, 0)),
                Outcome(str(params.get("error", "error")), True, Bash(0, 1)),
            ]
            mapped = params.get("error_mappings") or {}
            if isinstance(mapped, Mapping):
                for code, event in mapped.items():
                    if str(code).lstrip("-").isdigit():
                        found.append(Outcome(str(event), True, Bash(0, int(code))))
            if params.get("timeout_event") is not None:
                found.append(Outcome(str(params["timeout_event"]), True, Bash(0, timed_out=True)))
            return found
        if spec.type in ("check_database_queue", "get_pending_jobs"):
            claimed = "new_job" if spec.type == "check_database_queue" else "jobs_found"
            return [
                Outcome(str(params.get("success", claimed)), needs_job=True),
                Outcome(str(params.get("empty", "no_jobs"))),
            ]
        if spec.type in _FIXED:
            success = params.get("success")
            return [Outcome(None if success is None else str(success))]
        return None

    def steps_from(self, state: str) -> tuple[list[Step], dict[Transition, str]]:
        """How each transition leaving `state` can be taken, and why the others cannot."""
        actions = self.d.entry_actions.get(state, ())
        quiet = self._quiet_plan(state, actions)
        timers = [t.timeout for t in self.d.outgoing(state) if t.timeout is not None]
        found: list[Step] = []
        why: dict[Transition, str] = {}
        for transition in self.d.outgoing(state):
            if decide(self.d, state, transition.event) is not transition:
                continue  # shadowed by an earlier transition on the same event
            step = self._by_actions(state, actions, transition)
            if step is None and quiet is not None:
                if transition.timeout is not None:
                    if transition.timeout == min(timers):
                        step = Step(transition, state, "timer", quiet)
                elif not self._idle(state, transition):
                    step = Step(transition, state, "event", quiet)
            if step is None:
                why[transition] = self._why(state, actions, quiet)
            else:
                found.append(step)
        return found, why

    def _idle(self, state: str, transition: Transition) -> bool:
        return transition.target == state and transition.event in self.d.idle_events

    def _why(self, state: str, actions: Sequence[ActionSpec], quiet: object) -> str:
        custom = sorted({a.type for a in actions if self.outcomes(a) is None})
        if custom:
            return f"the outcome of {', '.join(custom)} in '{state}' is not generated"
        if quiet is None:
            return f"the actions of '{state}' always fire another transition first"
        return "no stimulus produces it"

    def _by_actions(
        self, state: str, actions: Sequence[ActionSpec], transition: Transition
    ) -> Step | None:
        """The transition fired by an action of `state` returning its event, the actions
        before it ending quietly."""
        plan: list[Bash] = []
        bash_index = 0
        for spec in actions:
            outcomes = self.outcomes(spec)
            if outcomes is None:
                return None
            wanted = next((o for o in outcomes if o.event == transition.event), None)
            if wanted is not None:
                if wanted.bash is not None:
                    plan.append(Bash(bash_index, wanted.bash.exit_code, wanted.bash.timed_out))
                kind = "park" if self._idle(state, transition) else "auto"
                job_type = None
                if wanted.needs_job:
                    kind = "job"
                    value = spec.params.get("job_type", self.d.metadata.get("job_type"))
                    job_type = str(value) if value is not None else "task"
                return Step(transition, state, kind, tuple(plan), job_type)
            calm = self._calm(state, outcomes)
            if calm is None:
                return None
            if spec.type == "bash":
                bash = calm.bash or Bash(0)
                plan.append(Bash(bash_index, bash.exit_code, bash.timed_out))
                bash_index += 1
        return None

    def _calm(self, state: str, outcomes: Sequence[Outcome]) -> Outcome | None:
        """An outcome that fires nothing and is no failure (the next action runs)."""
        for outcome in outcomes:
            if outcome.needs_job or outcome.failure:
                continue
            if outcome.event is None:
                return outcome
            fired = decide(self.d, state, outcome.event)
            if fired is None or self._idle(state, fired):
                return outcome  # nothing fires, or the machine parks where it is
        return None

    def _quiet_plan(self, state: str, actions: Sequence[ActionSpec]) -> tuple[Bash, ...] | None:
        """Results for the state's actions so that none fires (the machine then waits for an
        event or its timer); None when that cannot be arranged."""
        plan: list[Bash] = []
        bash_index = 0
        for spec in actions:
            outcomes = self.outcomes(spec)
            calm = None if outcomes is None else self._calm(state, outcomes)
            if calm is None:
                return None
            if spec.type == "bash":
                bash = calm.bash or Bash(0)
                plan.append(Bash(bash_index, bash.exit_code, bash.timed_out))
                bash_index += 1
        return tuple(plan)

    def paths(self) -> tuple[dict[Transition, tuple[Step, ...]], dict[Transition, str]]:
        """The shortest path of steps to each transition (breadth first from the initial
        state), and why each transition that has none cannot be generated."""
        best: dict[str, tuple[Step, ...]] = {self.d.initial_state: ()}
        found: dict[Transition, tuple[Step, ...]] = {}
        why: dict[Transition, str] = {}
        queue = deque([self.d.initial_state])
        while queue:
            state = queue.popleft()
            if self.d.is_final(state):
                continue
            steps, reasons = self.steps_from(state)
            for transition, reason in reasons.items():
                why.setdefault(transition, reason)
            for step in steps:
                path = (*best[state], step)
                found.setdefault(step.transition, path)
                target = step.transition.target
                if step.kind != "park" and target not in best:
                    best[target] = path
                    queue.append(target)
        return found, why


def segments(path: Sequence[Step]) -> list[list[Step]]:
    """The path cut where the test has to act: each segment after the first starts with an
    `event` or `timer` step; the others follow by themselves."""
    cut: list[list[Step]] = [[]]
    for step in path:
        if step.kind in TRIGGERS:
            cut.append([])
        cut[-1].append(step)
    return cut


async def run_path(
    config: Path,
    definition: MachineDefinition,
    path: Sequence[Step],
    *,
    tmp_path: Path,
    actions_dirs: Sequence[Path] = (),
) -> str | None:
    """Play one generated path in a fresh harness: None when every step took its
    transition, else what happened instead."""
    parts = segments(path)
    sample = samples(definition)
    jobs = [(step.job_type, sample["data"]) for step in parts[0] if step.job_type]
    job_type = str(definition.metadata.get("job_type") or "task")
    harness = MachineHarness(
        config,
        tmp_path=tmp_path,
        actions_dir=list(actions_dirs) or None,
        jobs=jobs,
        handed_job=(job_type, sample["data"]) if definition.template else None,
    )
    harness.stub_bash("*")  # whatever the plan does not cover succeeds without running
    harness.stub_action("start_fsm", "success")  # no processes: the run stays in the harness
    for step in path:
        for bash in step.bash:
            harness.stub_bash_in(
                step.source, bash.exit_code, timed_out=bash.timed_out, action=bash.index
            )
    m = harness
    await m.start(settle=False)
    try:
        seen = 0
        for number, part in enumerate(parts):
            if number:
                for step in part:
                    if step.job_type:
                        m.add_job(step.job_type, sample["data"])
                trigger = part[0]
                if trigger.kind == "event":
                    await m.send(trigger.transition.event, sample["payload"])
                else:
                    m.clock.advance(trigger.transition.timeout or 0.0)
            with contextlib.suppress(TimeoutError):  # an action still waits: judged below
                await m.settle(timeout=SETTLE)
            taken = m.transitions[seen:]
            seen = len(m.transitions)
            problem = _check(part, taken, m)
            if problem is not None:
                return problem
    finally:
        await m.close()
    return None


def _check(
    part: Sequence[Step], taken: Sequence[tuple[str | None, str, str | None]], m: MachineHarness
) -> str | None:
    """Each step of the segment appears, in order, among the transitions it took."""
    position = 0
    for step in part:
        if step.kind == "park":
            if m.state != step.source or m.engine().runtime.job is not None:
                return f"{step.label}: the machine is in {m.state}, not parked in {step.source}"
            continue
        want = (step.source, step.transition.target, step.transition.event)
        while position < len(taken) and taken[position] != want:
            position += 1
        if position == len(taken):
            return f"{step.label} was not taken; the machine took {list(taken) or 'nothing'}"
        position += 1
    return None


async def coverage(config: Path, *, tmp_path: Path, actions_dirs: Sequence[Path] = ()) -> Report:
    """Generated coverage of the machine in `config`: every transition, each played in a
    fresh harness (databases under `tmp_path`)."""
    loader = ActionLoader(list(actions_dirs) or default_actions_dirs([], config))
    definition = load_definition(config, loader)
    found, why = Planner(definition, loader).paths()
    report = Report(str(config))
    reachable = definition.reachable()
    for index, transition in enumerate(definition.transitions):
        path = found.get(transition)
        if path is None:
            reason = why.get(transition)
            if transition.source != WILDCARD and transition.source not in reachable:
                status, reason = "unreachable", f"no transition leads to '{transition.source}'"
            else:
                status = "not generated"
                if reason is None:
                    reason = f"'{transition.source}' is reached only through other steps"
            report.results.append(Result(transition, status, detail=reason))
            continue
        run_dir = tmp_path / f"t{index}"
        run_dir.mkdir(parents=True, exist_ok=True)
        problem = await run_path(
            config, definition, path, tmp_path=run_dir, actions_dirs=actions_dirs
        )
        status = "covered" if problem is None else "failed"
        report.results.append(Result(transition, status, path, problem or ""))
    return report

"""Loading scenario files: YAML with line numbers, ``--set`` overrides, and errors users can act on.

Every problem is reported with the file, the dotted path of the field, its line, and what to do;
all problems of a file are collected before anything runs.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from vsim.errors import Problem, ScenarioError
from vsim.scenario.schema import Scenario

__all__ = ["LoadedScenario", "apply_overrides", "load_scenario", "parse_scenario",
           "scenario_from_data"]

Loc = tuple[str | int, ...]
_WORKLOAD_KINDS = ("synthetic", "planetlab", "constant")


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from (relative paths resolve against ``base_dir``)."""

    spec: Scenario
    raw: dict[str, Any]  # the data as written, overrides applied
    file: str | None
    base_dir: Path
    lines: dict[Loc, int]

    @property
    def name(self) -> str:
        return self.spec.name

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its closest parent that is written in the file."""
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in self.lines:
                return self.lines[loc[:cut]]
        return None

    def problem(self, loc: Loc, message: str, hint: str = "") -> ScenarioError:
        return ScenarioError(
            [Problem(message, _dotted(loc), self.line_of(loc), hint)], file=self.file
        )


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def _yaml_with_lines(text: str, file: str | None) -> tuple[Any, dict[Loc, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            [Problem(f"not valid YAML: {problem}", line=mark.line + 1 if mark else None,
                     hint="check indentation, colons and quotes around this line")],
            file=file,
        ) from None
    lines: dict[Loc, int] = {}
    repeated: list[Problem] = []

    def walk(n: yaml.Node, loc: Loc) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                sub = (*loc, key.value)
                line = key.start_mark.line + 1
                if sub in lines:
                    # YAML keeps the last of two equal keys: the first would be lost unseen.
                    repeated.append(Problem(
                        f"{key.value!r} is given twice, on lines {lines[sub]} and {line}",
                        _dotted(sub), line, "keep one of them"))
                lines[sub] = line
                walk(value, sub)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                lines[(*loc, i)] = item.start_mark.line + 1
                walk(item, (*loc, i))

    if node is not None:
        lines[()] = node.start_mark.line + 1
        walk(node, ())
    if repeated:
        raise ScenarioError(repeated, file=file)
    return data, lines


def apply_overrides(data: dict[str, Any], overrides: list[str] | dict[str, Any],
                    resolved: list[Loc] | None = None) -> dict[str, Any]:
    """``hosts.0.count=30`` style overrides. List items may be named: ``vms.web.count=200``.

    Values are read as YAML scalars ("30" -> 30, "2 GHz" stays text, "[1, 2]" a list). The path
    each override set (list names replaced by indices) is appended to ``resolved``.
    """
    data = copy.deepcopy(data)
    pairs = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    for key, value in pairs:
        if key in TRACE_DATE_KEYS:
            _set_trace_date(data, key, value, resolved)
            continue
        parts = key.split(".")
        node: Any = data
        loc: list[str | int] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                index = _list_index(node, part, where)
                loc.append(index)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                loc.append(part)
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ScenarioError([Problem(
                    f"cannot set {key}: {'.'.join(parts[:i])} is a value, not a section",
                    path=key, hint="--set takes a dotted path to a field, e.g. hosts.0.count=30")])
        if resolved is not None:
            resolved.append(tuple(loc))
    return data


# ``--set workload.date=20110306``: the day of every PlanetLab workload of the scenario, so that
# one scenario file per policy serves every trace date.
TRACE_DATE_KEYS = ("workload.date", "workload.day")


def _set_trace_date(data: dict[str, Any], key: str, value: Any,
                    resolved: list[Loc] | None) -> None:
    workloads = data.get("workloads")
    if not isinstance(workloads, dict):
        workloads = {}
    names = [name for name, w in workloads.items()
             if isinstance(w, dict) and w.get("kind") == "planetlab"]
    if not names:
        raise ScenarioError([Problem(
            f"{key} sets the day of the scenario's PlanetLab workloads, and it has none",
            path=key, hint="set a workload's own field instead, e.g. workloads.NAME.day=...")])
    for name in names:
        workloads[name]["day"] = value
        if resolved is not None:
            resolved.append(("workloads", name, "day"))


def _split(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ScenarioError([Problem(f"override {item!r} has no '='",
                                     hint="write --set dotted.key=value, e.g. placement.policy=best-fit")])
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def _list_index(node: list[Any], part: str, where: str) -> int:
    if part.lstrip("-").isdigit():
        index = int(part)
        if -len(node) <= index < len(node):
            return index
        raise ScenarioError([Problem(f"no item {index} in a list of {len(node)}", path=where,
                                     hint="list items count from 0")])
    names = [item.get("name") for item in node if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    close = difflib.get_close_matches(part, [n for n in names if n], n=1)
    hint = f"did you mean {close[0]!r}?" if close else "use an item's name or its index from 0"
    raise ScenarioError([Problem(f"no item named {part!r}", path=where, hint=hint)])


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that the field at ``loc`` belongs to (for 'did you mean')."""
    current: Any = Scenario
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any, part: str | int) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _unwrap(args[0], part)
    if origin in (list, dict):
        return args[-1]
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            found = _unwrap(arg, part)
            if found is not None:
                return found
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                literal = arg.model_fields.get("kind")
                if literal is not None and part in typing.get_args(literal.annotation):
                    return arg  # the tag of a discriminated union, e.g. 'synthetic'
    return None


def _fields_near(loc: Loc) -> tuple[list[str], list[str]]:
    """The fields allowed beside the unknown one at ``loc``, and the closest of them (or none)."""
    model = _model_at(loc[:-1])
    known = list(model.model_fields) if model else []
    return known, difflib.get_close_matches(str(loc[-1]), known, n=1)


def _problems(exc: ValidationError, lines: dict[Loc, int], overridden: list[Loc]
              ) -> list[Problem]:
    out = []
    errors = exc.errors()
    # A misspelt required field is one mistake: say "did you mean", not also "required".
    misspelt = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            _, close = _fields_near(tuple(err["loc"]))
            if close:
                misspelt.add((*tuple(err["loc"])[:-1], close[0]))
    for err in errors:
        if err["type"] == "missing" and tuple(err["loc"]) in misspelt:
            continue
        loc: Loc = tuple(err["loc"])
        # Drop the workload union's tag ('workloads.web.synthetic.mean'): it is not a key in the file.
        clean = loc
        if len(loc) >= 3 and loc[0] == "workloads" and loc[2] in _WORKLOAD_KINDS:
            clean = loc[:2] + loc[3:]
        line = next((lines[clean[:c]] for c in range(len(clean), -1, -1) if clean[:c] in lines), None)
        kind = err["type"]
        hint = ""
        message = err["msg"]
        if kind == "extra_forbidden":
            known, close = _fields_near(loc)
            message = f"unknown field {loc[-1]!r}"
            hint = f"did you mean {close[0]!r}?" if close else (
                f"allowed here: {', '.join(known)}" if known else "remove it")
        elif kind == "missing":
            message = "this field is required"
            hint = "add it"
        elif kind == "union_tag_invalid":
            message = f"unknown workload kind {err['input'].get('kind')!r}" if isinstance(
                err.get("input"), dict) else message
            hint = "use kind: bitbrains, azure, alibaba, synthetic, planetlab or constant"
        elif kind == "union_tag_not_found":
            message = "a workload needs a kind"
            hint = "add kind: bitbrains, azure, alibaba, synthetic, planetlab or constant"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        source = next((o for o in overridden if clean[: len(o)] == o), None)
        if source is not None:
            message += f" (the value comes from --set {_dotted(source)}=...)"
        out.append(Problem(message, _dotted(clean), line, hint))
    return out


def parse_scenario(text: str, *, file: str | None = None, base_dir: Path | None = None,
                   overrides: list[str] | dict[str, Any] | None = None) -> LoadedScenario:
    """Validate scenario text; raises :class:`ScenarioError` listing every problem found."""
    data, lines = _yaml_with_lines(text, file)
    if not isinstance(data, dict):
        raise ScenarioError([Problem("a scenario is a YAML mapping (name:, hosts:, vms:, ...)",
                                     line=1, hint="see scenarios/quickstart.yaml")], file=file)
    overridden: list[Loc] = []
    if overrides:
        try:
            data = apply_overrides(data, overrides, overridden)
        except ScenarioError as exc:
            raise ScenarioError(exc.problems, file=file) from None
    base = base_dir or Path.cwd()
    merged = with_calibration(data, base, file, lines)
    try:
        spec = Scenario.model_validate(merged)
    except ValidationError as exc:
        raise ScenarioError(_problems(exc, lines, overridden), file=file) from None
    return LoadedScenario(spec, data, file, base, lines)


def scenario_from_data(data: dict[str, Any], *, file: str | None = None) -> LoadedScenario:
    """A scenario given as Python data (what a YAML file would hold), validated like a file's
    text, so that errors name the same fields and lines."""
    return parse_scenario(yaml.safe_dump(data, sort_keys=False), file=file)


def with_calibration(data: dict[str, Any], base_dir: Path, file: str | None,
                     lines: dict[Loc, int]) -> dict[str, Any]:
    """``data`` with the values of the calibration file it names (``calibration: FILE``, written by
    `vsim calibrate`) filled in: its ``scenario.migration`` into ``migration``, its
    ``scenario.hypervisor`` into every fluid host group and ``scenario.hypervisor_timeslice`` into
    every time-sliced one. What the scenario itself says wins."""
    name = data.get("calibration")
    if name is None:
        return data
    line = lines.get(("calibration",))
    if not isinstance(name, str):
        raise ScenarioError([Problem("a calibration is the path of a file written by `vsim "
                                     "calibrate`", path="calibration", line=line)], file=file)
    path = (base_dir / name) if not Path(name).is_absolute() else Path(name)
    try:
        values = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("scenario")
    except OSError:
        raise ScenarioError([Problem(f"no calibration file {path}", path="calibration", line=line,
                                     hint="write one with `vsim calibrate`")], file=file) from None
    except (yaml.YAMLError, AttributeError):
        values = None
    if not isinstance(values, dict):
        raise ScenarioError([Problem(f"{path} is not a calibration file (no scenario: section)",
                                     path="calibration", line=line, hint="write one with `vsim calibrate`")],
                            file=file)
    out = copy.deepcopy(data)
    if isinstance(values.get("migration"), dict) and isinstance(out.get("migration", {}), dict):
        out["migration"] = {**values["migration"], **(out.get("migration") or {})}
    if isinstance(out.get("hosts"), list):
        for group in out["hosts"]:
            if not isinstance(group, dict):
                continue
            own = group.get("hypervisor") or {}
            # Each CPU model has its own fitted costs.
            key = ("hypervisor_timeslice" if isinstance(own, dict) and own.get("scheduler") == "timeslice"
                   else "hypervisor")
            if isinstance(values.get(key), dict) and isinstance(own, dict):
                group["hypervisor"] = {**values[key], **own}
    return out


def load_scenario(path: str | Path, overrides: list[str] | dict[str, Any] | None = None
                  ) -> LoadedScenario:
    """Read and validate a scenario file (``overrides``: ``["placement.policy=best-fit", ...]``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem("no such scenario file",
                                     hint="`vsim scenarios` lists the shipped ones")], file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(f"cannot read the file: {exc}")], file=str(p)) from None
    return parse_scenario(text, file=str(p), base_dir=p.resolve().parent, overrides=overrides)

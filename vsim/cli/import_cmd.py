"""``vsim import``: inventories of the VMs that run today into a scenario's VM groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vsim.errors import VsimError

__all__ = ["register"]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _load_base(path: Path) -> dict[str, Any]:
    import yaml

    from vsim.errors import Problem, ScenarioError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(f"cannot read the scenario: {exc}",
                                     hint="check the --into path")], file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError([Problem(f"malformed YAML: {getattr(exc, 'problem', exc)}",
                                     line=mark.line + 1 if mark else None,
                                     hint="fix the scenario given to --into")],
                            file=str(path)) from None
    if not isinstance(data, dict):
        raise ScenarioError([Problem("not a scenario: the file is not a mapping of fields",
                                     hint="give --into a scenario YAML such as "
                                          "scenarios/quickstart.yaml")], file=str(path))
    return data


def register(main: click.Group, guarded: Callable[..., Any]) -> None:
    """Adds this module's commands to ``main``."""

    @main.command("import")
    @click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--into", "base", default=None, metavar="SCENARIO",
                  help="A scenario (file or shipped name) whose vms are replaced by the imported "
                       "groups; the rest is kept. Requires -o.")
    @click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
                  help="YAML file to write (default: stdout; required with --into).")
    @click.option("--disk-size-default", default=None, metavar="SIZE",
                  help="Size for disks whose size the inventory does not give (libvirt domain "
                       "XML never does), e.g. '40 GiB'. Default: leave the size out and report "
                       "it.")
    @guarded
    def import_cmd(files: tuple[Path, ...], base: str | None, out: Path | None,
                   disk_size_default: str | None) -> None:
        """Read VM inventories (FILES) and write them as a scenario's VM groups.

        FILES are OVF descriptors (.ovf), OVF packages (.ova), libvirt domain XML (.xml, as
        `virsh dumpxml` prints it) and RVTools vInfo tabs saved as CSV (.csv), in any mix; an
        RVTools vDisk tab (.csv) given too lists those VMs' disks one by one.
        Identical VMs become one group with a count. What was read and what could not be
        mapped is printed on stderr and written as comments at the top of the YAML.
        """
        from vsim.cli import _resolve
        from vsim.inventory import (
            group_vms,
            read_inventories,
            report_lines,
            scenario_text,
            vms_text,
            write_atomic,
        )
        from vsim.units import UnitError, parse_quantity

        default_size = None
        if disk_size_default is not None:
            try:
                default_size = round(parse_quantity(disk_size_default, "bytes"))
            except UnitError as exc:
                raise VsimError(f"--disk-size-default: {exc}") from None
            if default_size <= 0:
                raise VsimError("--disk-size-default: a disk size must be positive, "
                                "e.g. '40 GiB'")
        base_path = _resolve(base) if base is not None else None
        # Every refusal comes before any file is read, let alone written.
        if base_path is not None and out is None:
            raise VsimError("--into needs -o OUT.yaml: the scenario given to --into is never "
                            "overwritten")
        if out is not None:
            if base_path is not None and _same_file(out, base_path):
                raise VsimError(f"-o {out} is the scenario given to --into; write the result "
                                "to another file")
            if any(_same_file(out, f) for f in files):
                raise VsimError(f"-o {out} is one of the inventories being read; choose "
                                "another output file")
            if out.is_dir():
                raise VsimError(f"-o {out} is a folder; give a file name such as vms.yaml")
            if not out.parent.is_dir() and str(out.parent) not in ("", "."):
                raise VsimError(f"-o {out}: folder {out.parent} does not exist")
        base_data = _load_base(base_path) if base_path is not None else None
        if base_path is not None:
            # Its other sections are kept as they are: a problem there would only show when the
            # written scenario is run.
            from vsim.scenario import load_scenario

            load_scenario(base_path)

        inventories = read_inventories(files, default_size)
        vms = [vm for inv in inventories for vm in inv.vms]
        groups = group_vms(vms)
        for line in report_lines(inventories, groups):
            click.echo(line, err=True)
        if base_data is not None:
            assert base_path is not None
            text = scenario_text(base_data, base_path.name, inventories, groups)
        else:
            text = vms_text(inventories, groups)
        if out is None:
            click.echo(text, nl=False)
        else:
            try:
                write_atomic(out, text)
            except OSError as exc:
                raise VsimError(f"-o {out}: cannot write: {exc.strerror or exc}") from None
            click.echo(f"wrote {out}", err=True)

"""RVTools workbooks (.xlsx) into VM records.

RVTools saves a vCenter's inventory as one Excel workbook with a sheet per tab (vInfo, vCPU,
vMemory, vDisk, ...). The vInfo sheet is read exactly like its CSV export
(:mod:`vsim.inventory.rvtools`) and, when the workbook has a vDisk sheet, each VM gets its disks
one by one from it (:mod:`vsim.inventory.vdisk`). Errors name the file, the sheet and the row.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from vsim.inventory.common import Inventory, bad_input
from vsim.inventory.rvtools import CsvTable, read_vinfo
from vsim.inventory.vdisk import apply_vdisk, read_vdisk

__all__ = ["read_workbook"]


def _cell(value: Any) -> str:
    """A cell as the CSV export writes it: whole numbers without a decimal point."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sheets(path: Path, names: tuple[str, ...]) -> dict[str, CsvTable]:
    """The sheets ``names`` present in the workbook, as tables (rows keep their Excel row)."""
    try:
        from openpyxl import load_workbook
    except ImportError:  # pragma: no cover - openpyxl is a dependency
        raise bad_input(path, "reading .xlsx needs the openpyxl package",
                        hint="pip install openpyxl, or save the vInfo tab as CSV") from None
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise bad_input(path, f"not a readable .xlsx workbook ({exc})",
                        hint="save it again from Excel, or save the vInfo tab as CSV") from None
    try:
        out = {}
        by_lower = {name.lower(): name for name in book.sheetnames}
        for wanted in names:
            name = by_lower.get(wanted.lower())
            if name is None:
                continue
            rows = book[name].iter_rows(values_only=True)
            header = [_cell(v) for v in next(rows, ())]
            body = [(k, [_cell(v) for v in row]) for k, row in enumerate(rows, start=2)
                    if any(v is not None and str(v).strip() for v in row)]
            out[wanted] = CsvTable(f"{path} (sheet {name})", header, body)
        return out
    finally:
        book.close()


def read_workbook(path: Path) -> Inventory:
    """The VMs of an RVTools workbook's vInfo sheet, with the vDisk sheet's disks if it has one."""
    tables = _sheets(path, ("vInfo", "vDisk"))
    if "vInfo" not in tables or not any(h.strip() for h in tables["vInfo"].header):
        raise bad_input(path, "no vInfo sheet with a header row",
                        hint="give RVTools' whole export (RVTools_export_all.xlsx) or its vInfo "
                             "tab as CSV")
    inventory = read_vinfo(tables["vInfo"])
    if "vDisk" in tables:
        disks = read_vdisk(tables["vDisk"])
        apply_vdisk([inventory, disks])
        inventory.notes += disks.notes
    return inventory

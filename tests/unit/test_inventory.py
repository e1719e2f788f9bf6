"""``vsim import``: OVF/OVA, libvirt domain XML and RVTools vInfo CSV into VM groups.

Expected values are written from the sample files in tests/data/inventory, in the units those
files use (``4096 * MIB`` for an OVF item of 4096 "byte * 2^20").
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import QUICKSTART, REPO, scenario_from, vsim_cli

from vsim.errors import VsimError
from vsim.inventory import (
    Disk,
    Nic,
    Note,
    VmRecord,
    exact_size,
    group_vms,
    read_inventories,
    read_inventory,
    scenario_text,
    vms_text,
)

DATA = REPO / "tests" / "data" / "inventory"
KIB, MIB, GIB = 2**10, 2**20, 2**30

WEB01 = VmRecord("web01", 2, 4096 * MIB, "on",
                 (Disk(size=40 * GIB, format="vmdk", used=12884901888),), (Nic("VM Network"),))
DB01 = VmRecord("db01", 4, 16384 * MIB, "on",
                (Disk(size=107374182400, format="vmdk", used=32212254720),
                 Disk(format="vmdk")),  # capacity "${data.size}": no size
                (Nic("VM Network"), Nic("Backend")))


def _app(name: str) -> VmRecord:
    return VmRecord(name, 2, 8192 * MIB, "on",
                    (Disk(size=40960 * MIB, format="vmdk", used=10240 * MIB,
                          datastore="datastore1"),), (Nic("VM Network"),))


CSV_VMS = [
    _app("app01"),
    _app("app02"),
    VmRecord("db02", 8, 32768 * MIB, "off",
             (Disk(size=307200 * MIB, format="vmdk", used=204800 * MIB,
                   datastore="datastore2"),), (Nic("VM Network"), Nic("Backend"))),
    VmRecord("batch01", 4, 16384 * MIB, "off",  # suspended
             (Disk(size=81920 * MIB, format="vmdk", used=40960 * MIB, datastore="datastore2"),),
             (Nic("Backend"),)),
    VmRecord("legacy01", 1, 2048 * MIB, "on",
             (Disk(size=20480 * MIB, format="vmdk", used=5120 * MIB, datastore="lab-ds"),),
             tuple(Nic(f"lab-{x}") for x in "abcd")),
]


def _domain(name: str, size: int | None = None) -> VmRecord:
    return VmRecord(name, 2, 4194304 * KIB, "on",
                    (Disk(size=size, provisioning="thin", format="qcow2"),), (Nic("default"),))


def _error(path: Path, **kwargs) -> str:
    with pytest.raises(VsimError) as info:
        read_inventory(path, **kwargs)
    return str(info.value)


# --- OVF and OVA -----------------------------------------------------------------------------

def test_ovf_collection_gives_both_virtual_systems() -> None:
    inv = read_inventory(DATA / "site.ovf")
    assert inv.vms == [WEB01, DB01]
    assert inv.notes == [
        Note("db01", "disk 2: capacity '${data.size}' is not a size: no size"),
        Note("", "an OVF has no power state: VMs taken as on"),
        Note("", "an OVF does not say thin or thick: disk provisioning left out"),
    ]


def _ova(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "site.ova"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_ova_is_read_from_the_archive(tmp_path: Path) -> None:
    ovf = (DATA / "site.ovf").read_bytes()
    ova = _ova(tmp_path, {"site.ovf": ovf, "site.mf": b"SHA256(site.ovf)= 00\n",
                          "web01-disk1.vmdk": b"\0" * 512})
    inv = read_inventory(ova)
    assert inv.vms == [WEB01, DB01]
    assert inv.file == str(ova)


def test_ova_without_a_descriptor_is_refused(tmp_path: Path) -> None:
    ova = _ova(tmp_path, {"disk1.vmdk": b"\0" * 512})
    message = _error(ova)
    assert message.startswith(f"{ova}: no .ovf descriptor inside this OVA")
    assert "import the .ovf itself" in message


def test_an_ova_that_is_not_a_tar_is_refused(tmp_path: Path) -> None:
    ova = tmp_path / "broken.ova"
    ova.write_bytes(b"this is not a tar archive at all" * 40)
    assert _error(ova).startswith(f"{ova}: not a readable OVA (tar) archive")


def test_malformed_ovf_names_the_line(tmp_path: Path) -> None:
    lines = (DATA / "site.ovf").read_text().splitlines()
    broken = next(i for i, line in enumerate(lines) if "<Info>The list of" in line)
    lines[broken] = lines[broken].replace("</Info>", "</Inf>")
    bad = tmp_path / "bad.ovf"
    bad.write_text("\n".join(lines))
    message = _error(bad)
    assert message.startswith(f"{bad}:{broken + 1}: malformed XML at column ")
    assert "mismatched tag" in message


def test_malformed_ovf_inside_an_ova_names_the_member_and_line(tmp_path: Path) -> None:
    ova = _ova(tmp_path, {"app.ovf": b"<Envelope>\n<VirtualSystem>\n</Envelope>\n"})
    assert _error(ova).startswith(f"{ova}[app.ovf]:3: malformed XML")


def test_ovf_default_deployment_option_and_unit_spellings(tmp_path: Path) -> None:
    ovf = tmp_path / "options.ovf"
    ovf.write_text("""<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/2"
        xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2"
        xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
      <DeploymentOptionSection>
        <Configuration ovf:id="small"/><Configuration ovf:id="large" ovf:default="true"/>
      </DeploymentOptionSection>
      <VirtualSystem ovf:id="appliance">
        <VirtualHardwareSection>
          <Item ovf:configuration="small"><rasd:ResourceType>3</rasd:ResourceType>
            <rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
          <Item ovf:configuration="large"><rasd:ResourceType>3</rasd:ResourceType>
            <rasd:VirtualQuantity>8</rasd:VirtualQuantity></Item>
          <Item><rasd:ResourceType>4</rasd:ResourceType>
            <rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>
            <rasd:VirtualQuantity>12</rasd:VirtualQuantity></Item>
          <EthernetPortItem><rasd:ResourceType>10</rasd:ResourceType></EthernetPortItem>
        </VirtualHardwareSection>
      </VirtualSystem>
    </Envelope>""")
    inv = read_inventory(ovf)
    # No Name element: the ovf:id names it; the default option "large" gives 8 vCPUs.
    assert inv.vms == [VmRecord("appliance", 8, 12 * GIB, "on", (), (Nic(None),))]
    assert Note("appliance", "NIC 1: no Connection (network name)") in inv.notes


def test_ovf_without_memory_skips_the_vm_and_says_so(tmp_path: Path) -> None:
    ovf = tmp_path / "nomem.ovf"
    ovf.write_text('<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><VirtualSystem '
                   'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ovf:id="x">'
                   "<VirtualHardwareSection/></VirtualSystem></Envelope>")
    inv = read_inventory(ovf)
    assert inv.vms == []
    assert [n.subject for n in inv.notes][:2] == ["x", "x"]
    assert "skipped: no memory Item" in inv.notes[1].text


# --- libvirt ---------------------------------------------------------------------------------

def test_libvirt_domains() -> None:
    web02 = read_inventory(DATA / "web02.xml")
    assert web02.vms == [_domain("web02")]  # the CD-ROM is not a disk
    assert web02.notes == [
        Note("web02", "disk 1: no size in the domain XML"),
        Note("web02", "power state not in the domain XML: taken as on"),
    ]
    # <memory unit='GiB'>4</memory> and <vcpu current='2'>4</vcpu>: the same VM as web02.
    assert read_inventory(DATA / "web03.xml").vms == [_domain("web03")]


def test_disks_without_a_size_get_the_default_or_are_reported() -> None:
    files = [DATA / "web02.xml", DATA / "site.ovf"]
    web02, site = read_inventories(files, disk_size_default=20 * GIB)
    assert web02.vms == [_domain("web02", 20 * GIB)]
    assert site.vms[1].disks[1] == Disk(size=20 * GIB, format="vmdk")  # "${data.size}"
    assert site.vms[0] == WEB01  # sizes given stay
    assert web02.notes[-1] == Note("", "1 disk(s) without a size: --disk-size-default 20 GiB "
                                       "taken")
    web02, site = read_inventories(files)
    assert web02.vms == [_domain("web02")]
    assert site.notes[-1] == Note("", "1 disk(s) without a size: size left out (fill it in, or "
                                      "give --disk-size-default)")


def test_libvirt_bridges_block_devices_and_default_units(tmp_path: Path) -> None:
    xml = tmp_path / "db.xml"
    xml.write_text("""<domain type='kvm'><name>db9</name><memory>8388608</memory>
      <devices>
        <disk type='block' device='disk'><driver name='qemu' type='raw'/>
          <source dev='/dev/vg0/db9'/><target dev='vda'/></disk>
        <disk type='file'><driver name='qemu' type='vpc'/><source file='/x.vhd'/></disk>
        <interface type='bridge'><source bridge='br0'/></interface>
        <interface type='user'/>
      </devices></domain>""")
    inv = read_inventory(xml)
    # <memory> without unit is KiB; no <vcpu>: one vCPU; a disk without device= is a disk.
    assert inv.vms == [VmRecord("db9", 1, 8388608 * KIB, "on",
                                (Disk(provisioning="thick", format="raw"),
                                 Disk(provisioning="thick")),
                                (Nic("br0"), Nic(None)))]
    texts = [n.render() for n in inv.notes]
    assert "db9: disk 2: format 'vpc' is not vmdk, qcow2, vhdx or raw: left out" in texts
    assert "db9: NIC 2: interface type 'user' names no network: left out" in texts


@pytest.mark.parametrize(("xml", "expected"), [
    ("<domain><memory>1</memory></domain>", "<domain> has no <name>"),
    ("<domain><name>a</name></domain>", "<domain> has no <memory>"),
    ("<domain><name>a</name><memory unit='parsecs'>1</memory></domain>",
     "<memory unit='parsecs'>1</memory> is not a size"),
    ("<domain><name>a</name><memory>1</memory><vcpu>two</vcpu></domain>",
     "<vcpu> 'two' is not a number of vCPUs"),
    ("<network><name>default</name></network>", "unknown XML inventory: the root element is "
                                                 "<network>"),
])
def test_bad_domain_xml(tmp_path: Path, xml: str, expected: str) -> None:
    path = tmp_path / "d.xml"
    path.write_text(xml)
    assert _error(path).startswith(f"{path}: {expected}")


# --- RVTools vInfo CSV -----------------------------------------------------------------------

def test_vinfo_csv() -> None:
    inv = read_inventory(DATA / "vinfo.csv")
    assert inv.vms == CSV_VMS
    assert inv.templates == 1
    assert [n.render() for n in inv.notes] == [
        "db02: Disks 3: vInfo has only the total, written as one disk (the vDisk tab has each "
        "disk)",
        "batch01: Powerstate 'suspended' taken as off",
        "template gold-win: skipped (a template, not a VM)",
        "legacy01: NICs 6 but 4 network(s) named in Network #1..#4: 4 NIC(s) written",
        "vInfo does not say thin or thick: disk provisioning left out",
        "columns not mapped (no place in a VM group): Cluster, Host, OS according to the "
        "configuration file",
    ]


def test_vinfo_csv_in_rvtools_export_spelling_semicolons_and_windows_text(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    text = ("vInfoPowerstate;vInfoCPUs;Extra Column;vInfoVMName;vInfoMemory;vInfoProvisioned;"
            "vInfoInUse;vInfoNetwork1;vInfoTemplate\n"
            "poweredOn;2;x;café01;4,096;10240;2048;Prod LAN;FALSE\n"
            ";;;;;;;;\n")
    path.write_bytes(text.encode("cp1252"))
    inv = read_inventory(path)
    assert inv.vms == [VmRecord("café01", 2, 4096 * MIB, "on",
                                (Disk(size=10 * GIB, format="vmdk", used=2 * GIB),),
                                (Nic("Prod LAN"),))]


def test_vinfo_csv_with_a_bom_and_no_power_column(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text("\ufeffVM,CPUs,Memory\nsmall,1,512\n", encoding="utf-8")
    inv = read_inventory(path)
    assert inv.vms == [VmRecord("small", 1, 512 * MIB, "on")]
    assert Note("", "no Powerstate column: every VM taken as on") in inv.notes


def test_vinfo_csv_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "partial.csv"
    path.write_text("VM,Powerstate,Cores\nx,poweredOn,2\n")
    message = _error(path)
    assert message.startswith(f"{path}:1: no CPUs, Memory column(s) in the header "
                              "(found: VM, Powerstate, Cores)")


@pytest.mark.parametrize(("row", "expected"), [
    ("x,two,1024", ":3: CPUs 'two' of VM 'x' is not a number"),
    ("x,2,", ":3: Memory is empty for VM 'x'"),
    ("x,1.5,1024", ":3: CPUs '1.5' of VM 'x' is not a whole number of vCPUs"),
])
def test_vinfo_csv_bad_cells_name_the_line(tmp_path: Path, row: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"VM,CPUs,Memory\nok,1,1024\n{row}\n")
    assert _error(path).startswith(f"{path}{expected}")


def test_vdisk_tab_gives_each_vm_its_disks() -> None:
    vinfo, vdisk = read_inventories([DATA / "vinfo.csv", DATA / "vdisk.csv"])
    assert vdisk.vms == [] and len(vdisk.disks_by_vm) == 4  # app01, app02, db02, old99
    by_name = {vm.name: vm for vm in vinfo.vms}
    # One disk each: vInfo's In Use MiB stays with it; Thin True → thin.
    assert by_name["app01"].disks == (Disk(size=40960 * MIB, provisioning="thin", format="vmdk",
                                           used=10240 * MIB, datastore="datastore1"),)
    assert by_name["app01"].identity() == by_name["app02"].identity()
    # Three disks: In Use MiB is the VM's total, so no disk has it.
    assert by_name["db02"].disks == (
        Disk(size=40960 * MIB, provisioning="thin", format="vmdk", datastore="datastore2"),
        Disk(size=131072 * MIB, provisioning="thick", format="vmdk", datastore="datastore2"),
        Disk(size=135168 * MIB, provisioning="thick", format="vmdk", datastore="san-ds"))
    # VMs the vDisk tab does not list keep vInfo's total disk.
    assert by_name["batch01"] == CSV_VMS[3] and by_name["legacy01"] == CSV_VMS[4]
    notes = [n.render() for n in vinfo.notes]
    assert "db02: 3 disks from the vDisk tab: In Use MiB is the VM's total, so used is left out" \
        in notes
    assert not any(n.startswith("db02: Disks 3") for n in notes)  # no longer one total disk
    assert [n.render() for n in vdisk.notes] == [
        "old99: in the vDisk tab but in no other file read: its disks are not used"]


def _workbook(path: Path, sheets: dict[str, Path]) -> Path:
    """An .xlsx like RVTools writes: one sheet per tab, the CSV samples' cells as values
    (numbers as numbers, True/False as booleans)."""
    import csv

    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, source in sheets.items():
        sheet = book.create_sheet(name)
        for k, row in enumerate(csv.reader(source.read_text(encoding="utf-8").splitlines())):
            cells: list[object] = []
            for cell in row:
                if k and cell in ("True", "False"):
                    cells.append(cell == "True")
                else:
                    try:
                        cells.append(int(cell) if k else cell)
                    except ValueError:
                        cells.append(cell)
            sheet.append(cells)
    book.save(path)
    return path


def test_an_rvtools_workbook_reads_as_its_csv_tabs(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "RVTools_export_all.xlsx",
                     {"vInfo": DATA / "vinfo.csv", "vCPU": DATA / "vinfo.csv",
                      "vDisk": DATA / "vdisk.csv"})
    [from_book] = read_inventories([book])
    vinfo, _ = read_inventories([DATA / "vinfo.csv", DATA / "vdisk.csv"])
    # The same VMs, with the vDisk sheet's disks, as from the two CSV tabs.
    assert from_book.vms == vinfo.vms and from_book.templates == vinfo.templates == 1
    notes = [n.render() for n in from_book.notes]
    assert "old99: in the vDisk tab but in no other file read: its disks are not used" in notes
    # Without a vDisk sheet: vInfo's totals, as from the vInfo CSV alone.
    only = _workbook(tmp_path / "vinfo-only.xlsx", {"vInfo": DATA / "vinfo.csv"})
    assert read_inventories([only])[0].vms == read_inventories([DATA / "vinfo.csv"])[0].vms


def test_bad_workbooks_are_one_clear_error(tmp_path: Path) -> None:
    no_vinfo = _workbook(tmp_path / "disks.xlsx", {"vDisk": DATA / "vdisk.csv"})
    with pytest.raises(VsimError, match="no vInfo sheet"):
        read_inventories([no_vinfo])
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(VsimError, match=r"broken.xlsx.*not a readable .xlsx workbook"):
        read_inventories([broken])
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(VsimError, match="Excel 97-2003"):
        read_inventories([old])
    # A bad cell names the sheet and the row.
    rows = (DATA / "vinfo.csv").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([rows[0], rows[1].replace(",2,", ",two,", 1), *rows[2:]]),
                   encoding="utf-8")
    with pytest.raises(VsimError, match=r"bad-cell.xlsx \(sheet vInfo\):2: CPUs 'two' of VM "
                       r"'app01' is not a number"):
        read_inventories([_workbook(tmp_path / "bad-cell.xlsx", {"vInfo": bad})])


def test_vdisk_tab_without_vm_column(tmp_path: Path) -> None:
    path = tmp_path / "vdisk.csv"
    path.write_text("Disk,Capacity MiB\nHard disk 1,1024\n")
    assert _error(path).startswith(f"{path}:1: no VM column in the vDisk header")


def test_unknown_file_types_are_refused(tmp_path: Path) -> None:
    for name, expected in [("vms.json", "unknown inventory file type '.json'"),
                           ("RVTools.xls", "an Excel 97-2003 workbook"),
                           ("missing.csv", "no such file")]:
        path = tmp_path / name
        if name != "missing.csv":
            path.write_text("{}")
        assert _error(path).startswith(f"{path}: {expected}")


# --- grouping and YAML -----------------------------------------------------------------------

def test_identical_vms_become_one_group_named_after_the_first() -> None:
    vms = [*CSV_VMS, _domain("web02"), _domain("web03")]
    groups = group_vms(vms)
    assert [(g.name, [vm.name for vm in g.members]) for g in groups] == [
        ("app01", ["app01", "app02"]), ("db02", ["db02"]), ("batch01", ["batch01"]),
        ("legacy01", ["legacy01"]), ("web02", ["web02", "web03"]),
    ]
    # The power state is part of the identity: a powered-off twin is another group.
    twin = VmRecord("app03", *_app("x").identity()[:2], "off", *_app("x").identity()[3:])
    assert len(group_vms([_app("app01"), twin])) == 2


def test_group_names_are_sanitised_and_unique() -> None:
    vms = [VmRecord("web 01.prod", 1, GIB), VmRecord("web-01-prod", 2, GIB),
           VmRecord("(old)", 1, 2 * GIB)]
    assert [g.name for g in group_vms(vms)] == ["web-01-prod", "web-01-prod-2", "old"]


@pytest.mark.parametrize(("n_bytes", "text"), [
    (4096 * MIB, "4 GiB"), (1536 * MIB, "1.5 GiB"), (12345 * MIB, "12345 MiB"),
    (3 * 2**40, "3 TiB"), (1280 * KIB, "1.25 MiB"), (12884901888, "12 GiB"), (1000, "1000 B"),
])
def test_exact_sizes(n_bytes: int, text: str) -> None:
    assert exact_size(n_bytes) == text


def test_vms_yaml_structure_and_comments() -> None:
    inventories = [read_inventory(DATA / "site.ovf"), read_inventory(DATA / "vinfo.csv")]
    groups = group_vms([vm for inv in inventories for vm in inv.vms])
    text = vms_text(inventories, groups)
    data = yaml.safe_load(text)
    assert list(data) == ["vms"]
    assert data["vms"][0] == {"name": "web01", "count": 1, "vcpus": 2, "ram": "4 GiB",
                              "power": "on",
                              "disks": [{"size": "40 GiB", "format": "vmdk", "used": "12 GiB"}],
                              "nics": [{"network": "VM Network"}]}
    assert data["vms"][1]["disks"][1] == {"format": "vmdk"}
    assert data["vms"][2] == {"name": "app01", "count": 2, "vcpus": 2, "ram": "8 GiB",
                              "power": "on",
                              "disks": [{"size": "40 GiB", "format": "vmdk", "used": "10 GiB",
                                         "datastore": "datastore1"}],
                              "nics": [{"network": "VM Network"}]}
    assert data["vms"][3]["power"] == "off"
    allowed = {"name", "count", "vcpus", "ram", "power", "disks", "nics"}
    for group in data["vms"]:
        assert set(group) <= allowed and group["power"] in ("on", "off")
    header = text[:text.index("vms:")]
    assert all(line.startswith("#") for line in header.splitlines())
    assert "batch01: Powerstate 'suspended' taken as off" in header
    assert "template gold-win: skipped (a template, not a VM)" in header
    assert "  # 2 VM(s): app01, app02\n  - name: app01" in text


def test_scenario_keeps_the_other_keys_of_the_base() -> None:
    base = yaml.safe_load(QUICKSTART.read_text())
    inventories = [read_inventory(DATA / "web02.xml"), read_inventory(DATA / "web03.xml")]
    text = scenario_text(base, "quickstart.yaml", inventories,
                         group_vms([vm for inv in inventories for vm in inv.vms]))
    data = yaml.safe_load(text)
    # The network the VMs name is added (the disks have no size: no datastore can be sized).
    assert list(data) == [*base, "networks"]
    assert data["networks"] == [{"name": "default"}]
    assert {k: v for k, v in data.items() if k not in ("vms", "networks")} == \
           {k: v for k, v in base.items() if k != "vms"}
    assert "# network 'default' added" in text
    # With the base's own VM groups back in, the written scenario loads (the imported disks
    # need a size first: --disk-size-default, or an edit).
    scenario_from({**data, "vms": base["vms"]})
    assert data["vms"] == [{"name": "web02", "count": 2, "vcpus": 2, "ram": "4 GiB",
                            "power": "on",
                            "disks": [{"provisioning": "thin", "format": "qcow2"}],
                            "nics": [{"network": "default"}]}]


# --- the command line ------------------------------------------------------------------------

SAMPLES = [str(DATA / n) for n in ("site.ovf", "vinfo.csv", "web02.xml", "web03.xml")]


def test_cli_prints_the_vms_and_reports_on_stderr() -> None:
    done = vsim_cli("import", *SAMPLES, cwd=REPO)
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load(done.stdout)
    assert [(g["name"], g["count"]) for g in data["vms"]] == [
        ("web01", 1), ("db01", 1), ("app01", 2), ("db02", 1), ("batch01", 1), ("legacy01", 1),
        ("web02", 2)]
    err = done.stderr
    assert f"{DATA / 'site.ovf'}: 2 VM(s)\n" in err
    assert f"{DATA / 'vinfo.csv'}: 5 VM(s), 1 template(s) skipped\n" in err
    assert "9 VM(s) in 7 group(s)" in err
    assert "batch01: Powerstate 'suspended' taken as off" in err
    assert "web02: disk 1: no size in the domain XML" in err


def test_cli_into_writes_a_complete_scenario(tmp_path: Path) -> None:
    out = tmp_path / "imported.yaml"
    done = vsim_cli("import", SAMPLES[1], "--into", "quickstart", "-o", str(out),
                    "--disk-size-default", "30 GiB", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    data = yaml.safe_load(out.read_text())
    base = yaml.safe_load(QUICKSTART.read_text())
    assert data["hosts"] == base["hosts"] and data["name"] == base["name"]
    assert [g["name"] for g in data["vms"]] == ["app01", "db02", "batch01", "legacy01"]
    assert out.read_text().startswith("# quickstart.yaml with its vms replaced")
    assert [p.name for p in tmp_path.iterdir()] == ["imported.yaml"]
    # The datastores the disks name are added, sized to what the imported disks provision:
    # app01 (2 VMs x 40 GiB) on datastore1; db02 (300 GiB) and the rest on datastore2.
    stores = {d["name"]: d["capacity"] for d in data["datastores"]}
    assert stores["datastore1"] == "80 GiB"
    # And the scenario runs as written.
    run = vsim_cli("run", str(out), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run" / "datastores.parquet").exists()


def test_cli_into_needs_out_and_never_overwrites_the_base(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(QUICKSTART.read_text())
    done = vsim_cli("import", SAMPLES[2], "--into", str(base), cwd=tmp_path)
    assert done.returncode == 2 and "--into needs -o" in done.stderr
    done = vsim_cli("import", SAMPLES[2], "--into", str(base), "-o", "./base.yaml",
                    cwd=tmp_path)
    assert done.returncode == 2 and "is the scenario given to --into" in done.stderr
    assert base.read_text() == QUICKSTART.read_text()
    inventory = tmp_path / "web02.xml"
    inventory.write_bytes(Path(SAMPLES[2]).read_bytes())
    done = vsim_cli("import", str(inventory), "-o", str(inventory), cwd=tmp_path)
    assert done.returncode == 2 and "is one of the inventories being read" in done.stderr
    assert inventory.read_bytes() == Path(SAMPLES[2]).read_bytes()


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("dom.xml", "<domain>\n<name>x</name>\n<memory>1</memory\n</domain>\n",
     "dom.xml:4: malformed XML at column"),
    ("inv.csv", "VM,Powerstate\nx,poweredOn\n", "inv.csv:1: no CPUs, Memory column(s)"),
    ("inv.txt", "hello", "inv.txt: unknown inventory file type '.txt'"),
])
def test_cli_bad_input_is_one_message_and_no_output_file(tmp_path: Path, name: str,
                                                          content: str, expected: str) -> None:
    (tmp_path / name).write_text(content)
    out = tmp_path / "out.yaml"
    # The good file first: nothing may be written although it was read.
    done = vsim_cli("import", SAMPLES[2], name, "-o", str(out), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"vsim: error: {expected}")
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_cli_ova_without_descriptor_and_bad_default_size(tmp_path: Path) -> None:
    ova = _ova(tmp_path, {"disk.vmdk": b"\0" * 512})
    done = vsim_cli("import", str(ova), cwd=tmp_path)
    assert done.returncode == 2 and "no .ovf descriptor inside this OVA" in done.stderr
    done = vsim_cli("import", SAMPLES[2], "--disk-size-default", "20 parsecs", cwd=tmp_path)
    assert done.returncode == 2 and "--disk-size-default: unknown bytes unit" in done.stderr
    assert "Traceback" not in done.stderr

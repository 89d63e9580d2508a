"""The systemd unit: what the daemon needs is allowed, the documented install is what it runs,
and `systemd-analyze security` rates it at or below 2.5."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

UNIT = REPO / "systemd" / "edgevoice.service"
SERVICE_README = REPO / "systemd" / "README.md"
MAX_EXPOSURE = 2.5


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value given (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key, [])
    assert len(values) == 1, f"{key}= given {len(values)} times"
    return values[0]


def install_block() -> str:
    text = SERVICE_README.read_text()
    return text[text.index("```bash"):text.index("```", text.index("```bash") + 3)]


def test_the_unit_runs_what_the_documented_install_installs() -> None:
    service = parse_unit(UNIT)["Service"]
    install = install_block()
    argv = shlex.split(one(service, "ExecStart"))
    venv = str(Path(argv[0]).parents[1])
    assert argv[0] == f"{venv}/bin/edgevoice"
    assert f"python3 -m venv {venv}\n" in install
    assert f"{venv}/bin/pip install" in install
    # ProtectHome=yes hides /home: the venv must not live there
    assert one(service, "ProtectHome") == "yes" and not venv.startswith(("/home", "/root"))
    config = argv[argv.index("--config") + 1]
    assert f"/etc/edgevoice/{Path(config).name}" in install and config.startswith("/etc/edgevoice/")
    assert "/etc/edgevoice" in one(service, "ReadOnlyPaths").split()
    doc = one(parse_unit(UNIT)["Unit"], "Documentation")
    assert doc.startswith("file://") and f" {doc.removeprefix('file://')}\n" in install, \
        "Documentation= must name a file the documented install puts there"
    assert "useradd --system" in install and f" {one(service, 'User')}\n" in install


def test_the_unit_keeps_what_the_daemon_needs() -> None:
    service = parse_unit(UNIT)["Service"]
    assert one(service, "Group") == "audio"  # /dev/snd is root:audio 0660
    assert "SupplementaryGroups" not in service
    assert one(service, "DeviceAllow") == "char-alsa rw"
    assert set(one(service, "RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET",
                                                                   "AF_INET6"}
    assert one(service, "StateDirectory") == "edgevoice"
    # spool files hold what people said
    assert one(service, "StateDirectoryMode") == "0700" and one(service, "UMask") == "0077"
    assert one(service, "SystemCallErrorNumber") == "EPERM"  # a refused call fails, not kills
    assert one(service, "Type") == "notify" and "WatchdogSec" in service


def test_a_user_mistake_exits_with_the_code_the_unit_does_not_restart(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sinks: 3\n")
    out = subprocess.run([sys.executable, "-m", "edgevoice", "check-config", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert one(parse_unit(UNIT)["Service"], "RestartPreventExitStatus") == "2"


def exposure(unit: Path) -> float:
    """The overall exposure `systemd-analyze security` gives the unit file (0 safe .. 10)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    out = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    if found is None:
        pytest.skip(f"systemd-analyze security --offline is not supported here: "
                    f"{out.stderr.strip()[:200]}")
    return float(found.group(1))


def test_systemd_rates_the_unit_at_most_2_5() -> None:
    assert exposure(UNIT) <= MAX_EXPOSURE

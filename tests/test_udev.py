"""Tests of udev/: the SpaceMouse hidraw rule and its installer (which is never run here)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from iil_robot.command.hidraw import RULES_NAME

UDEV = Path(__file__).resolve().parent.parent / "udev"
RULES = UDEV / RULES_NAME
INSTALL = UDEV / "install.sh"


def rules() -> list[dict[str, str]]:
    """Each rule as {KEY: value}, e.g. {'ATTRS{idVendor}==': '256f', 'TAG+=': 'uaccess'}."""
    parsed = []
    for line in RULES.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            parsed.append({key + op: value for key, op, value in
                           re.findall(r'([A-Z]+(?:\{\w+\})?)\s*(==|\+=|=)\s*"([^"]*)"', line)})
    return parsed


def matching_rules(vendor: str, product: str, bus: str = "0003") -> list[dict[str, str]]:
    """The rules a hidraw node of this device matches, matching like udev does (globs)."""
    attrs = {"ATTRS{idVendor}==": vendor, "ATTRS{idProduct}==": product,
             "KERNELS==": f"{bus}:{vendor.upper()}:{product.upper()}.0001"}
    if bus != "0003":  # no USB parent: no idVendor/idProduct attributes
        attrs = {"KERNELS==": attrs["KERNELS=="]}
    return [
        rule for rule in rules()
        if rule.get("SUBSYSTEM==") == "hidraw"
        and all(key in attrs and fnmatchcase(attrs[key], pattern)
                for key, pattern in rule.items() if key in ("ATTRS{idVendor}==", "ATTRS{idProduct}==", "KERNELS=="))
    ]


def test_rule_file_sorts_before_seat_late_rules_that_apply_uaccess():
    assert RULES.name < "73-seat-late.rules"
    assert RULES.name.endswith(".rules")


def test_every_rule_grants_uaccess_and_plugdev_on_hidraw():
    assert rules(), f"{RULES} has no rules"
    for rule in rules():
        assert rule["SUBSYSTEM=="] == "hidraw"
        assert (rule["TAG+="], rule["MODE="], rule["GROUP="]) == ("uaccess", "0660", "plugdev")


def test_rules_name_both_3dconnexion_vendors():
    vendors = {rule.get("ATTRS{idVendor}==") for rule in rules()}
    assert {"046d", "256f"} <= vendors


@pytest.mark.parametrize(
    ("vendor", "product", "bus", "matches"),
    [
        ("256f", "c635", "0003", True),   # SpaceMouse Compact
        ("046d", "c626", "0003", True),   # SpaceNavigator
        ("046d", "c62b", "0003", True),   # SpaceMouse Pro
        ("256f", "c638", "0005", True),   # SpaceMouse Pro Wireless over Bluetooth
        ("046d", "c52b", "0003", False),  # Logitech Unifying receiver
        ("046d", "c077", "0003", False),  # Logitech mouse
        ("1234", "c626", "0003", False),
    ],
)
def test_rules_match_3dconnexion_devices_only(vendor, product, bus, matches):
    assert bool(matching_rules(vendor, product, bus)) is matches


def test_install_script_is_valid_executable_bash():
    subprocess.run(["bash", "-n", str(INSTALL)], check=True)
    assert os.access(INSTALL, os.X_OK), f"{INSTALL} is not executable: chmod +x it"
    text = INSTALL.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert RULES_NAME in text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_install_script_passes_shellcheck():
    subprocess.run(["shellcheck", str(INSTALL)], check=True)

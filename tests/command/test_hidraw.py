"""Finding SpaceMouse hidraw nodes and diagnosing open failures."""
from __future__ import annotations

import ctypes.util

import pyspacemouse
import pytest
from pyspacemouse import AxisConvention

from iil_robot.command.hidraw import diagnose_open_error, find_spacemouse_hidraw, is_spacemouse
from tests.fakes import FakeHidrawTree


# --------------------------------------------------------------------------------------
# Finding hidraw nodes and diagnosing open failures
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vendor_id", "product_id", "expected"),
    [(0x046D, 0xC626, True), (0x256F, 0xC635, True), (0x256F, 0x0001, True),
     (0x046D, 0xC52B, False), (0x046D, 0xC077, False), (0x1234, 0xC626, False)],
)
def test_is_spacemouse_by_vendor_and_product(vendor_id, product_id, expected):
    assert is_spacemouse(vendor_id, product_id) is expected


def test_find_spacemouse_hidraw_keeps_3dconnexion_nodes_only(hidraw_tree: FakeHidrawTree):
    hidraw_tree.add(0, 0x046D, 0xC52B, "Logitech USB Receiver")
    hidraw_tree.add(1, 0x1234, 0x5678, "Some Keyboard")
    hidraw_tree.add(10, 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact", readable=False)
    hidraw_tree.add(2, 0x046D, 0xC626, "3Dconnexion SpaceNavigator")
    found = find_spacemouse_hidraw(hidraw_tree.sys_root, hidraw_tree.dev_root, access=hidraw_tree.access)
    assert [(d.path.name, d.vendor_id, d.product_id, d.name, d.readable) for d in found] == [
        ("hidraw2", 0x046D, 0xC626, "3Dconnexion SpaceNavigator", True),
        ("hidraw10", 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact", False),
    ]


def test_find_spacemouse_hidraw_without_hidraw_class_is_empty(tmp_path):
    assert find_spacemouse_hidraw(tmp_path / "sys", tmp_path / "dev") == []


def diagnose(tree: FakeHidrawTree, error: Exception) -> str:
    return diagnose_open_error(error, tree.sys_root, tree.dev_root, access=tree.access)


def test_diagnose_unreadable_node_says_install_udev_rule(hidraw_tree):
    hidraw_tree.add(3, 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact", readable=False)
    message = diagnose(hidraw_tree, RuntimeError("Failed to open device"))
    assert message == (
        f"permission denied on {hidraw_tree.dev_root}/hidraw3 (3Dconnexion SpaceMouse Compact): "
        "install udev/70-iil-robot-spacemouse.rules with `sudo udev/install.sh`, "
        "then unplug and replug the device"
    )


def test_diagnose_no_spacemouse_says_plug_it_in(hidraw_tree):
    hidraw_tree.add(0, 0x046D, 0xC52B, "Logitech USB Receiver")  # Logitech, not c6xx
    message = diagnose(hidraw_tree, RuntimeError("No connected or supported devices found."))
    assert message == (
        "no SpaceMouse found: plug it in (3Dconnexion vendors 046d/256f); "
        "`iil-robot doctor` shows what is visible"
    )


def test_diagnose_node_missing_in_container_says_pass_it_in(hidraw_tree):
    hidraw_tree.add(4, 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact", node=False)
    message = diagnose(hidraw_tree, RuntimeError("Failed to open device"))
    assert "hidraw4 (3Dconnexion SpaceMouse Compact)" in message
    assert f"docker run --device {hidraw_tree.dev_root}/hidraw4" in message


def test_diagnose_readable_but_unsupported_model(hidraw_tree):
    hidraw_tree.add(5, 0x256F, 0xC6FF, "3Dconnexion Future Mouse")
    message = diagnose(hidraw_tree, RuntimeError("No connected or supported devices found."))
    assert message.startswith("pyspacemouse does not support the 3Dconnexion device at ")
    assert "256f:c6ff" in message


def test_diagnose_unknown_device_name():
    message = diagnose_open_error(ValueError("Unknown device: 'Nope'. Available: ['SpaceNavigator']"))
    assert message.startswith("unknown SpaceMouse device name (Unknown device: 'Nope'.")
    assert 'or to "" for the first SpaceMouse found' in message


def test_diagnose_other_open_error_keeps_the_original(hidraw_tree):
    hidraw_tree.add(3, 0x046D, 0xC626, "3Dconnexion SpaceNavigator")
    message = diagnose(hidraw_tree, RuntimeError("Failed to open device"))
    assert message.startswith(
        f"could not open the SpaceMouse at {hidraw_tree.dev_root}/hidraw3 "
        "(3Dconnexion SpaceNavigator, 046d:c626) (RuntimeError: Failed to open device)"
    )


@pytest.mark.skipif(ctypes.util.find_library("hidapi-hidraw") is not None,
                    reason="libhidapi-hidraw is installed on this machine")
def test_real_pyspacemouse_open_without_libhidapi_is_diagnosed():
    with pytest.raises(RuntimeError, match="HID API is probably not installed") as caught:
        pyspacemouse.open(nonblocking=True, axis_convention=AxisConvention.ROS)
    assert diagnose_open_error(caught.value).startswith(
        "libhidapi-hidraw0 is not installed: run `sudo apt-get install libhidapi-hidraw0`"
    )

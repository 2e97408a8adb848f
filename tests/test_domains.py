"""Test ROS domains: exclusive between processes, and the one released longest ago first."""
import subprocess
import sys

from tests import domains


def test_a_claimed_domain_is_not_handed_to_another_process_and_a_released_one_comes_last(tmp_path, monkeypatch):
    monkeypatch.setattr(domains, "LOCK_DIR", tmp_path)
    monkeypatch.setattr(domains, "FIRST", 20)
    monkeypatch.setattr(domains, "LAST", 23)
    first = domains.claim()
    other = subprocess.run([sys.executable, "-c", f"""
import sys; sys.path.insert(0, {str(__import__('os').getcwd())!r})
from tests import domains
domains.LOCK_DIR, domains.FIRST, domains.LAST = __import__('pathlib').Path({str(tmp_path)!r}), 20, 23
print([domains.claim().first for _ in range(3)])
"""], capture_output=True, text=True, check=True)
    assert first.first not in eval(other.stdout)  # the other process got the three others
    first.release()
    second = domains.claim()
    assert second.first != first.first  # the others were released before it (when that process ended): older
    block = domains.claim(2)
    assert len(block.ids) == 2 and second.first not in block.ids
    second.release()
    block.release()

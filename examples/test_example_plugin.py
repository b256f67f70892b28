"""Testing a plugin: without a guest (fast), and on the real guest.

Run:  pytest examples/test_example_plugin.py
(needs ``pip install 'syscalls-async[test]'``; the fixtures come from the
pytest plugin the package installs, nothing to import or configure but
``asyncio_mode = "auto"`` for pytest-asyncio, or ``@pytest.mark.asyncio`` on
each test)

The first two tests feed syscall events to the plugins' handlers through
``syscalls_fake_guest`` and check the verdicts; the last one boots the guest
once (``syscalls_machine``, shared by all tests of the run) and runs a real
program under the plugin with ``syscalls_session``.
"""

from pathlib import Path

HERE = Path(__file__).parent
EACCES = 13


async def test_shadow_is_refused_other_files_are_not(syscalls_fake_guest, capsys):
    syscalls_fake_guest.load_plugin_file(HERE / "file_access.py")

    # strings are placed in the fake guest memory; the handler reads them with plugins.mem
    shadow = await syscalls_fake_guest.syscall("openat", -100, "/etc/shadow", 0, 0, comm="cat")
    notes = await syscalls_fake_guest.syscall("openat", -100, "/tmp/notes", 0, 0, comm="cat")

    assert shadow.skipped and shadow.retval == -EACCES
    assert notes.continued and notes.retval is None
    assert "BLOCKED: /etc/shadow" in capsys.readouterr().out


async def test_ioctl_filters_decide_which_calls_reach_the_handler(syscalls_fake_guest):
    syscalls_fake_guest.load_plugin_file(HERE / "skip_ioctl.py")

    hit = await syscalls_fake_guest.syscall("ioctl", 9, 0xABCD, 0, comm="send_syscall")
    other_program = await syscalls_fake_guest.syscall("ioctl", 9, 0xABCD, 0, comm="cat")

    assert hit.skipped and hit.retval == 43
    assert other_program.handlers_run == 0 and other_program.continued


async def test_on_the_real_guest(syscalls_session):
    syscalls_session.load_plugin_file(HERE / "skip_ioctl.py")

    result = await syscalls_session.run("send_syscall ioctl 9 0xabcd")

    assert result.stdout == b"send_syscall: syscall returned 43\n"
    assert syscalls_session.stats.handler_calls == 1

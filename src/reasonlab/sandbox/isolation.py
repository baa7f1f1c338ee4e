"""How the untrusted process is isolated: bubblewrap when it works here, else a weaker fallback.

bubblewrap (Debian package ``bubblewrap``): new user, pid, network, ipc and uts namespaces; a
filesystem that holds only read-only system libraries and the Python runtime, a fresh /tmp and
the execution's own work dir as the only writable places; no /etc, /home, /root; an empty
environment; uid 65534 inside; killed with its parent. Python runs with ``-I -S`` (isolated, no
site-packages): stdlib only. Nested user namespaces are closed (``--disable-userns``, bubblewrap
>= 0.8): ``unshare(CLONE_NEWUSER)`` fails inside, so model-written code cannot reach the kernel
code paths that only a namespace's "root" can (a recurring source of privilege escalations).
Where the installed bwrap lacks the option, a seccomp filter (``seccomp.py``, passed with
``--seccomp FD``) closes them instead; ``userns_guard`` picks.

Fallback (no working bwrap): same rlimits, empty environment, cwd in the work dir, and an audit
hook inside the interpreter that refuses sockets, subprocesses, signals to other processes and
opening files outside the work dir. An audit hook is defence in depth, not a security boundary:
native code or ctypes can bypass it. docs/sandbox.md says this plainly.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from reasonlab.sandbox import seccomp

SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/lib32")


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bwrap binary if it exists AND can create namespaces here (containers may forbid it)."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        r = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if r.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def userns_flags() -> tuple[str, ...]:
    """bwrap options that forbid creating user namespaces inside, if this bwrap has them and
    they work here; else ()."""
    path = bwrap_path()
    if path is None:
        return ()
    flags = ("--unshare-user", "--disable-userns")
    try:
        r = subprocess.run([path, "--unshare-all", *flags, "--ro-bind", "/", "/", "true"],
                           capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return flags if r.returncode == 0 else ()


def userns_guard() -> tuple[list[str], tuple[int, ...]]:
    """(bwrap options that close nested user namespaces, file descriptors they need passed to
    bwrap; the caller closes them once bwrap has started). Empty only on a bwrap without
    ``--disable-userns`` on a machine ``seccomp.py`` has no numbers for."""
    if userns_flags():
        return list(userns_flags()), ()
    if not seccomp.supported():
        return [], ()
    read, write = os.pipe()  # a filter is ~100 bytes: it fits the pipe buffer, no thread needed
    os.write(write, seccomp.userns_filter())
    os.close(write)
    return ["--seccomp", str(read)], (read,)


def python_runtime() -> tuple[str, str]:
    """(interpreter, runtime dir) of the base Python — not the venv, whose site-packages stay out."""
    base = Path(sys.base_prefix)
    exe = base / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not exe.exists():
        exe = Path(sys.executable).resolve()
    return str(exe), str(base)


def bwrap_argv(bwrap: str, workdir: str, argv: list[str], guard: list[str] = ()) -> list[str]:
    """``guard``: the options of ``userns_guard``."""
    exe, runtime = python_runtime()
    cmd = [bwrap, "--unshare-all", *guard, "--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534",
           "--hostname", "sandbox", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
           "--setenv", "HOME", "/work", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
           "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for d in SYSTEM_DIRS:
        if Path(d).exists() and not Path(d).is_symlink():
            cmd += ["--ro-bind", d, d]
        elif Path(d).is_symlink():
            cmd += ["--symlink", str(Path(d).readlink()), d]
    if not any(runtime.startswith(d + "/") for d in SYSTEM_DIRS):
        cmd += ["--ro-bind", runtime, runtime]
    cmd += ["--bind", workdir, "/work", "--chdir", "/work", exe, *argv]
    return cmd


AUDIT_PRELUDE = r'''
import sys as _s, os as _o
_root = _o.getcwd()
def _hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.__new__", "subprocess.Popen", "os.system",
                 "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "ctypes.dlopen"):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "os.kill" and args[0] != _o.getpid():
        raise PermissionError("sandbox: signals to other processes are not allowed")
    if event == "open" and isinstance(args[0], str):
        p = _o.path.realpath(args[0])
        write = len(args) > 1 and isinstance(args[1], str) and any(c in args[1] for c in "wax+")
        if write and not p.startswith(_root):
            raise PermissionError(f"sandbox: writing {p} is not allowed")
        if not write and not (p.startswith(_root) or p.startswith(_s.base_prefix) or p.startswith("/usr")
                              or p.startswith("/dev/null") or p.startswith("/proc/self")):
            raise PermissionError(f"sandbox: reading {p} is not allowed")
_s.addaudithook(_hook)
del _hook
'''

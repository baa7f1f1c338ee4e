"""A seccomp filter that closes nested user namespaces, for bubblewrap versions without
``--disable-userns`` (< 0.8): handed to ``bwrap --seccomp FD``.

The filter (classic BPF over ``struct seccomp_data``) denies with EPERM ``unshare`` and ``clone``
whose flags hold ``CLONE_NEWUSER``, answers ENOSYS to ``clone3`` (its flags sit behind a pointer
a filter cannot read; libc then falls back to ``clone``, which is checked), and kills a process
making a system call of another architecture (x32 or 32-bit calls on a 64-bit host), through
which the numbers above would mean other calls. Everything else is allowed: the rest of the
sandbox is bubblewrap's namespaces and our rlimits, not a syscall allow-list.
"""

from __future__ import annotations

import errno
import platform
import struct

# BPF opcodes (linux/filter.h, linux/bpf_common.h) and seccomp return values
LD_ABS, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
ALLOW, KILL_PROCESS, RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
CLONE_NEWUSER = 0x10000000
X32_BIT = 0x40000000
# machine -> (AUDIT_ARCH, unshare, clone, clone3)
ARCHES = {"x86_64": (0xC000003E, 272, 56, 435), "aarch64": (0xC00000B7, 97, 220, 435)}


def supported() -> bool:
    return platform.machine() in ARCHES


def userns_filter() -> bytes:
    """The compiled filter for this machine (``struct sock_filter[]``, native byte order)."""
    arch, nr_unshare, nr_clone, nr_clone3 = ARCHES[platform.machine()]
    # (code, jump-if-true label, jump-if-false label, k); labels resolve to relative offsets
    prog = [
        (LD_ABS, None, None, 4),                  # A = seccomp_data.arch
        (JEQ, None, "kill", arch),
        (LD_ABS, None, None, 0),                  # A = seccomp_data.nr
        (JSET, "kill", None, X32_BIT),            # x32 numbering on x86_64
        (JEQ, "enosys", None, nr_clone3),
        (JEQ, "flags", None, nr_unshare),
        (JEQ, "flags", None, nr_clone),
        (RET, None, None, ALLOW),
        ("flags", LD_ABS, None, None, 16),        # A = low 32 bits of args[0] (little-endian)
        (JSET, "eperm", None, CLONE_NEWUSER),
        (RET, None, None, ALLOW),
        ("eperm", RET, None, None, RET_ERRNO | errno.EPERM),
        ("enosys", RET, None, None, RET_ERRNO | errno.ENOSYS),
        ("kill", RET, None, None, KILL_PROCESS),
    ]
    labels, rows = {}, []
    for i, ins in enumerate(prog):
        if isinstance(ins[0], str):
            labels[ins[0]] = i
            ins = ins[1:]
        rows.append(ins)
    out = b""
    for i, (code, jt, jf, k) in enumerate(rows):
        rel = lambda label: 0 if label is None else labels[label] - i - 1  # noqa: E731
        out += struct.pack("=HBBI", code, rel(jt), rel(jf), k)
    return out

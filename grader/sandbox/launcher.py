"""Contain the child, then exec it: `python -I -S -c <this file's source> CONFIG_JSON`.

This file runs on its own (standard library only, nothing imported from the grader) in the
process that becomes the sandbox. It builds the layers in order, records which held, sends
that record as the first frame on the reply pipe, and execs the executor:

1. namespaces: mount, PID, network, IPC and UTS (plus a user namespace when not root);
2. a fork: the child is PID 1 of the new PID namespace, so every process the student starts
   dies with it; the parent only waits and passes the exit status on;
3. a filesystem view: the grader's packages, the source checkout, the submission's folder,
   home folders and sockets are covered by empty read-only tmpfs; what Python needs under
   them is bound back; everything is read-only except a private, size-capped /tmp;
4. an unprivileged uid and gid with no groups when root; no_new_privs; a seccomp filter that
   refuses namespace, mount, ptrace and kernel-level system calls; resource limits.
Where namespaces can't be made (no unprivileged user namespaces, a container without
CAP_SYS_ADMIN), the fallback is Landlock: reads only of Python, the system's libraries and the
child's folders (the grader's packages left out), writes only to the child's work folder, no
TCP, signals scoped to the sandbox; the parent is the subreaper of all the child starts and
ends it. Where neither a view nor Landlock holds, the launcher refuses to run student code,
unless the grader was told not to insist (`contain` false: the operator's --allow-uncontained).
`{"probe": true}` only reports what this machine allows.
"""

import ctypes
import fcntl
import json
import os
import resource
import signal
import stat
import struct
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NEWCGROUP = 0x02000000
NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP
)  # CLONE_NEWTIME shares bits with the exit signal
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 4, 38, 22
SECCOMP_MODE_FILTER = 2
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1
PR_SET_CHILD_SUBREAPER = 36
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
SKIP_NOTE = "skipped (DLI_GRADE_SANDBOX_SKIP, a switch for tests)"

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.syscall.restype = ctypes.c_long


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source, target, fstype, flags, data=None):
    _check(
        libc.mount(
            source and source.encode(), target.encode(), fstype and fstype.encode(), flags, data and data.encode()
        ),
        f"mount {target}",
    )


# -- seccomp ---------------------------------------------------------------------------------
# System calls the child never needs and an attacker wants: namespaces, mounts, tracing other
# processes, stealing their file descriptors, kernel modules and keys, io_uring (which runs
# requests outside this filter). Numbers by architecture, as in the kernel's tables.
DENIED_SYSCALLS = {
    "x86_64": {
        "ptrace": 101,
        "syslog": 103,
        "vhangup": 153,
        "pivot_root": 155,
        "adjtimex": 159,
        "chroot": 161,
        "acct": 163,
        "settimeofday": 164,
        "mount": 165,
        "umount2": 166,
        "swapon": 167,
        "swapoff": 168,
        "reboot": 169,
        "sethostname": 170,
        "setdomainname": 171,
        "iopl": 172,
        "ioperm": 173,
        "init_module": 175,
        "delete_module": 176,
        "quotactl": 179,
        "lookup_dcookie": 212,
        "clock_settime": 227,
        "kexec_load": 246,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "unshare": 272,
        "perf_event_open": 298,
        "fanotify_init": 300,
        "name_to_handle_at": 303,
        "open_by_handle_at": 304,
        "clock_adjtime": 305,
        "setns": 308,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "kcmp": 312,
        "finit_module": 313,
        "kexec_file_load": 320,
        "bpf": 321,
        "userfaultfd": 323,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "pidfd_getfd": 438,
        "mount_setattr": 442,
    },
    "aarch64": {
        "ptrace": 117,
        "syslog": 116,
        "vhangup": 58,
        "pivot_root": 41,
        "adjtimex": 171,
        "chroot": 51,
        "acct": 89,
        "settimeofday": 170,
        "mount": 40,
        "umount2": 39,
        "swapon": 224,
        "swapoff": 225,
        "reboot": 142,
        "sethostname": 161,
        "setdomainname": 162,
        "init_module": 105,
        "delete_module": 106,
        "quotactl": 60,
        "lookup_dcookie": 18,
        "clock_settime": 112,
        "kexec_load": 104,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "unshare": 97,
        "perf_event_open": 241,
        "fanotify_init": 262,
        "name_to_handle_at": 264,
        "open_by_handle_at": 265,
        "clock_adjtime": 266,
        "setns": 268,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "kcmp": 272,
        "finit_module": 273,
        "kexec_file_load": 294,
        "bpf": 280,
        "userfaultfd": 282,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "pidfd_getfd": 438,
        "mount_setattr": 442,
    },
}
CLONE_SYSCALL = {"x86_64": 56, "aarch64": 220}
SOCKET_SYSCALLS = {"x86_64": (41, 53), "aarch64": (198, 199)}  # socket, socketpair
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
NETLINK_ROUTE = 0
CLONE3_SYSCALL = 435
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
EPERM, ENOSYS = 1, 38
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JSET_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x45, 0x35, 0x06


def _seccomp_program(arch: str, inet: bool = False) -> bytes:
    """A classic-BPF filter: another architecture is killed; a denied call fails with EPERM;
    clone with a namespace flag fails; clone3 says ENOSYS, so the C library falls back to clone;
    socket and socketpair only make AF_UNIX sockets, and AF_INET/AF_INET6 where `inet` (a
    network namespace holds, with nothing to reach), plus NETLINK_ROUTE sockets (getifaddrs);
    vsock, the other netlink families, packet and the rest fail with EPERM (a network namespace
    does not cover vsock, and netlink's audit, uevent and other families talk to the kernel)."""

    def op(code, k, jt=0, jf=0):
        return struct.pack("HBBI", code, jt, jf, k)

    refuse = op(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM)
    allow = op(BPF_RET_K, SECCOMP_RET_ALLOW)
    program = [
        op(BPF_LD_W_ABS, 4),
        op(BPF_JEQ_K, AUDIT_ARCH[arch], 1, 0),
        op(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        op(BPF_LD_W_ABS, 0),
    ]
    if arch == "x86_64":  # the x32 ABI reaches the same calls under other numbers
        program += [op(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1), refuse]
    program += [op(BPF_JEQ_K, CLONE3_SYSCALL, 0, 1), op(BPF_RET_K, SECCOMP_RET_ERRNO | ENOSYS)]
    # clone(flags, ...): the low word of the first argument (offset 16) must hold no namespace flag.
    program += [
        op(BPF_JEQ_K, CLONE_SYSCALL[arch], 0, 4),
        op(BPF_LD_W_ABS, 16),
        op(BPF_JSET_K, NAMESPACE_FLAGS, 0, 1),
        refuse,
        allow,
    ]
    families = (AF_UNIX, AF_INET, AF_INET6) if inet else (AF_UNIX,)
    socket_call, socketpair_call = SOCKET_SYSCALLS[arch]
    for number in (socket_call, socketpair_call):
        # socket(family, type, protocol): the low words of the first and third arguments. socket()
        # may also make AF_NETLINK sockets of NETLINK_ROUTE alone: getifaddrs(3) reads the interfaces
        # through one (libzmq calls it in the course flow's Jupyter kernel, and aborts when refused);
        # without CAP_NET_ADMIN it changes nothing, and in the empty network namespace it sees only lo.
        route = number == socket_call
        tail = (
            [op(BPF_JEQ_K, AF_NETLINK, 0, 2), op(BPF_LD_W_ABS, 32), op(BPF_JEQ_K, NETLINK_ROUTE, 1, 0)] if route else []
        )
        checks = [op(BPF_JEQ_K, family, len(families) - index + len(tail), 0) for index, family in enumerate(families)]
        body = [op(BPF_LD_W_ABS, 16), *checks, *tail, refuse, allow]
        program += [op(BPF_JEQ_K, number, 0, len(body)), *body]
        program += [op(BPF_LD_W_ABS, 0)]  # not this call: the number again, for the next test
    for number in sorted(set(DENIED_SYSCALLS[arch].values())):
        program += [op(BPF_JEQ_K, number, 0, 1), refuse]
    return b"".join([*program, allow])


def _install_seccomp(inet: bool) -> str:
    arch = os.uname().machine
    if arch not in DENIED_SYSCALLS:
        raise OSError(0, f"no system call table for {arch}")
    code = _seccomp_program(arch, inet)
    filters = ctypes.create_string_buffer(code, len(code))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    program = Program(len(code) // 8, ctypes.addressof(filters))
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0), "seccomp")
    return f"{len(DENIED_SYSCALLS[arch])} system calls refused ({arch}); sockets: AF_UNIX" + (
        ", AF_INET and AF_INET6 in the empty network namespace" if inet else " only"
    )


# -- the filesystem view: an allow-list ---------------------------------------------------------
# The child starts from an empty root holding only read-only binds of what the runtime needs;
# nothing else exists in it (a classmate's notebook, a second checkout, /autograder, /srv...).
VIEW_ROOT = "/tmp/.dli"  # the executor's code and the course helpers, read-only
VIEW_WORKDIR = "/tmp/work"  # the child's working folder (its ./data is MNIST, read-only)
BUILD_AT = "/tmp"  # where the fresh root is built, shadowing /tmp in this namespace alone
SYSTEM_LIBRARIES = ("/lib", "/lib32", "/lib64", "/usr/lib", "/usr/lib32", "/usr/lib64", "/bin", "/usr/bin")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf")
CPU_INFO = ("/sys/devices/system/cpu", "/sys/devices/system/node")  # thread counts, NUMA (torch, OpenMP)
KERNEL_INFO = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat")  # the view mounts a fresh /proc instead
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEVICE_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
PRIVATE_TMPFS_MB = {"/dev/shm": 16}  # beside /tmp (tmp_size_mb): private, size-capped, gone afterwards
MNT_DETACH = 2
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


def device_nodes(device: str, dev: str = "/dev") -> list:
    """The device nodes the child may open: the harmless five, and on CUDA the NVIDIA nodes
    (nvidia0..., nvidiactl, nvidia-uvm, nvidia-caps/...), without which no GPU can be used."""
    nodes = [dev + path[len("/dev") :] for path in DEVICES]
    if str(device).startswith("cuda") and os.path.isdir(dev):
        nodes += sorted(os.path.join(dev, name) for name in os.listdir(dev) if name.startswith("nvidia"))
    return nodes


def read_paths(config: dict) -> list:
    """Everything the child may read, in the view and under Landlock alike (the grader's
    packages under any of them are hidden separately): the system's libraries, a few named
    files of /etc, the CPU's description, Python (`expose`: its prefixes' bin and lib folders,
    site-packages, the path) and, on CUDA, /sys (the NVIDIA library reads the PCI tree)."""
    cuda = str(config.get("device", "cpu")).startswith("cuda")
    return [*SYSTEM_LIBRARIES, *ETC_FILES, *(("/sys",) if cuda else CPU_INFO), *config["expose"]]


def _depth(path: str) -> int:
    return path.rstrip("/").count("/")


def _open_path(path: str):
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None


def _make_mountpoint(target: str, directory: bool) -> None:
    """Only ever inside the fresh root's own tmpfs: a target under a bound folder exists already
    (it is the same path as its source), so nothing is created on the host."""
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if directory:
        os.mkdir(target)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _bind(fd: int, target: str) -> None:
    _make_mountpoint(target, os.path.isdir(f"/proc/self/fd/{fd}"))
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)


def _build_view(config: dict) -> str:
    """A fresh tmpfs root with read-only binds of `read_paths` (the grader's packages under them
    covered), a minimal /dev, a fresh /proc, a private /tmp; then pivot_root into it."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Open every source first: once the root is built on top of /tmp, a path there can't be reached.
    sources, links = {}, {}
    for path in read_paths(config):
        if os.path.islink(path):  # /lib -> usr/lib stays a link; what it points to is bound
            links[path] = os.readlink(path)
        real = os.path.realpath(path)
        fd = _open_path(real)
        if fd is not None:
            sources[real] = fd
    devices = {path: fd for path in device_nodes(config.get("device", "cpu")) if (fd := _open_path(path)) is not None}
    binds = {
        _view_path(name): os.open(source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        for name, source in config["mounts"].items()
    }
    tmp_size = int(config["tmp_size_mb"])
    root = BUILD_AT
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    try:
        _fill_root(root, config, sources, links, devices, binds)
    except BaseException:
        libc.umount2(root.encode(), MNT_DETACH)  # a fallback must find the real /tmp again
        raise
    return (
        f"an empty root with {len(sources)} folders and files bound read-only, {len(devices)} devices, "
        f"a private {tmp_size} MiB /tmp"
    )


def _fill_root(root: str, config: dict, sources: dict, links: dict, devices: dict, binds: dict) -> None:
    tmp_size = int(config["tmp_size_mb"])
    writable = {"/tmp": tmp_size, **PRIVATE_TMPFS_MB}
    steps = [(path, "bind") for path in sources]
    steps += [(os.path.realpath(path), "hide") for path in config["hide"]]
    steps += [(path, "writable") for path in writable]
    # Shallow first; at equal depth cover before binding: Python may live under a hidden folder
    # (a venv in the checkout) or under /tmp, and is bound on top of the cover.
    for path, action in sorted(steps, key=lambda step: (_depth(step[0]), step[1] == "bind")):
        target = root + path
        if action == "bind":
            _bind(sources[path], target)
        elif action == "writable":
            _make_mountpoint(target, True)
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={writable[path]}m,mode=1777")
        elif os.path.isdir(target) and any(path.startswith(source.rstrip("/") + "/") for source in sources):
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    for path, destination in links.items():
        if not os.path.lexists(root + path):
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            os.symlink(destination, root + path)
    for path, fd in devices.items():
        _bind(fd, root + path)
    for name, destination in DEVICE_LINKS.items():
        os.symlink(destination, f"{root}/dev/{name}")
    os.makedirs(root + VIEW_WORKDIR)
    for target, fd in binds.items():
        _bind(fd, root + target)
    # A /proc of this PID namespace: no other process, the grader's included, is in it.
    _make_mountpoint(root + "/proc", True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # Read-only everywhere, then writable again for the private folders alone (not what is under them).
    _set_read_only(root, True, recursive=True)
    for path in writable:
        _set_read_only(root + path, False)
    _pivot_into(root)


def _pivot_into(root: str) -> None:
    """Make `root` the namespace's / and drop the old root, so no path leads back to it."""
    os.chdir(root)
    _check(libc.syscall(PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")


def _set_read_only(path: str, read_only: bool, recursive: bool = False) -> None:
    """mount_setattr(2): set or clear MOUNT_ATTR_RDONLY on the mount at `path`."""
    attributes = struct.pack("QQQQ", MOUNT_ATTR_RDONLY if read_only else 0, 0 if read_only else MOUNT_ATTR_RDONLY, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    if libc.syscall(442, AT_FDCWD, path.encode(), flags, attributes, len(attributes)) != 0:
        raise OSError(ctypes.get_errno(), f"mount_setattr {path}: a read-only view is not available")


def _view_path(name: str) -> str:
    """Where a mount named in the config appears inside the view."""
    return VIEW_WORKDIR + "/data" if name == "data" else f"{VIEW_ROOT}/{name}"


# -- Landlock: the view's fallback where namespaces are not available --------------------------
# Without a mount namespace nothing can be covered or remounted, but Landlock (Linux 5.13+, an
# unprivileged LSM) can restrict this process and all it starts to an allow-list of paths.
# Access rights by ABI version, as in include/uapi/linux/landlock.h.
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
LL_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
LL_TRUNCATE, LL_IOCTL_DEV = 1 << 14, 1 << 15
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
LL_NET_BIND_TCP, LL_NET_CONNECT_TCP = 1 << 0, 1 << 1
LL_SCOPE_ABSTRACT_UNIX_SOCKET, LL_SCOPE_SIGNAL = 1 << 0, 1 << 1
LL_RULE_PATH_BENEATH = 1
LL_CREATE_RULESET_VERSION = 1 << 0


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where it has none (or it is switched off)."""
    abi = libc.syscall(
        SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(LL_CREATE_RULESET_VERSION)
    )
    return max(0, int(abi))


def _grants(allowed, hidden) -> tuple[list, list]:
    """What to allow so that everything under `allowed` is reachable except what lies under
    `hidden`: (paths to read whole, folders only to list). Landlock only adds access, so a
    folder that holds a hidden path is replaced by its other entries, recursively, and may only
    be listed (Python lists site-packages to import from it, where a non-editable install puts
    the grader's packages beside torch): the hidden folder's file names can then be listed, its
    files never read. An allowed path under a hidden one (a venv inside the checkout) stays
    allowed, as the view binds it back. Paths are resolved first: a rule holds for what a path
    resolves to, so a link to a folder holding a hidden path (a venv's lib64 -> lib) must be
    expanded like the folder itself, never granted whole."""
    hidden = {os.path.realpath(path) for path in hidden}
    granted, listable, seen = [], [], set()

    def visit(path):
        path = os.path.realpath(path)
        if path in hidden or path in seen:
            return
        seen.add(path)
        if any(other.startswith(path.rstrip("/") + "/") for other in hidden):
            try:
                entries = os.listdir(path)
            except OSError:
                return
            listable.append(path)
            for entry in entries:
                visit(os.path.join(path, entry))
        elif os.path.lexists(path):
            granted.append(path)

    for path in dict.fromkeys(os.path.realpath(path) for path in allowed):
        visit(path)
    return granted, listable


def _landlock(read: list, write: list, list_only: list | tuple = (), devices: list | tuple = DEVICES) -> str:
    """Restrict this process and its descendants: read (and run) only `read`, list only
    `list_only`, write only `write`, open `devices` for reading and writing (and, from ABI 5,
    ioctl: the NVIDIA driver is driven by it); no TCP; with ABI 6, no signals or abstract
    sockets outside the sandbox."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError(ctypes.get_errno() or 38, "Landlock is not available in this kernel")
    fs = LL_FS_BY_ABI.get(abi, LL_FS_BY_ABI[5])
    net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP if abi >= 4 else 0
    scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("QQQ", fs, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    rules = 0
    groups = (
        (read, LL_EXECUTE | LL_READ_FILE | LL_READ_DIR),
        (list_only, LL_READ_DIR),
        (write, fs),
        (devices, LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE | LL_IOCTL_DEV),
    )
    try:
        for paths, access in groups:
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    rights = access & fs
                    if not os.path.isdir(path):
                        rights &= LL_FILE_RIGHTS
                    rule = struct.pack("=Qi", rights, fd)
                    if libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LL_RULE_PATH_BENEATH, rule, 0) != 0:
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
                    rules += 1
                finally:
                    os.close(fd)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return (
        f"ABI {abi}: reads {rules} allowed paths (Python, the child's folders), writes only its "
        f"work folder"
        + ("; no TCP" if net else "; TCP not restricted (ABI < 4)")
        + ("; signals and abstract sockets scoped to the sandbox" if scoped else "; signals not scoped (ABI < 6)")
    )


def _fallback_paths(config: dict) -> dict:
    """Without a view, the child uses the real folders; the executor is reached through a link
    in its work folder, so its parent (the grader's package) need not be listable."""
    workdir = config["fallback_workdir"]
    links = os.path.join(workdir, ".dli")
    os.makedirs(links, exist_ok=True)
    os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
    link = os.path.join(links, "executor")
    if not os.path.lexists(link):
        os.symlink(config["mounts"]["executor"], link)
    data = os.path.join(workdir, "data")  # the course notebook's ./data, where the view binds it
    if "data" in config["mounts"] and not os.path.lexists(data):
        os.symlink(config["mounts"]["data"], data)
    return {"workdir": workdir, **config["mounts"], "executor": link}


def _landlock_view(config: dict, paths: dict) -> str:
    """The view's list (read_paths), nothing more: the kernel's CPU and memory description and
    the child's own /proc entry stand in for the view's fresh /proc."""
    cuda = str(config.get("device", "cpu")).startswith("cuda")
    read = [
        *read_paths(config),
        *config["mounts"].values(),
        *KERNEL_INFO,
        os.path.realpath("/proc/self"),
        *(("/proc/driver/nvidia",) if cuda else ()),
    ]
    readable, listable = _grants(read, config["hide"])
    return _landlock(readable, [paths["workdir"]], listable, device_nodes(config.get("device", "cpu")))


# -- privileges and limits -------------------------------------------------------------------
def claim_identity(first: int, count: int, lock_dir: str, start: int = 0) -> tuple:
    """A uid (and the gid of the same number) of the reserved range that no live sandbox holds:
    (uid, fd of its lock). The lock is held as long as the fd is open (in the launcher's waiting
    parent, which outlives every process of the sandbox), so two sandboxes alive at once never
    share a uid, and RLIMIT_NPROC (counted per uid) is each sandbox's own. A uid that still has
    processes (a sandbox that outlived a crash) is passed over."""
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    held = os.lstat(lock_dir)
    if not stat.S_ISDIR(held.st_mode) or held.st_uid != os.geteuid() or held.st_mode & 0o022:
        raise OSError(1, f"{lock_dir} is not a folder of this user's alone")
    for step in range(count):
        uid = first + (start + step) % count
        fd = os.open(os.path.join(lock_dir, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if _user_tasks(uid) == 0:
            return uid, fd
        os.close(fd)
    raise OSError(11, f"every uid from {first} to {first + count - 1} is held by a live sandbox")


def _become_nobody(config: dict, uid: int) -> str:
    gid = uid
    os.chown(VIEW_WORKDIR, uid, gid)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    return f"uid {uid}, gid {gid} (this sandbox's own), no supplementary groups"


def _limit_resources(config: dict) -> str:
    limits = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_FSIZE: config["file_limit_mb"] * 1024**2,
        resource.RLIMIT_NOFILE: 4096,
        resource.RLIMIT_NPROC: config["process_limit"],
    }
    if config.get("memory_limit_mb"):
        limits[resource.RLIMIT_AS] = config["memory_limit_mb"] * 1024**2
    for which, value in limits.items():
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
    return f"{config['file_limit_mb']} MiB a file, {config['process_limit']} processes" + (
        f", {config['memory_limit_mb']} MiB of memory" if config.get("memory_limit_mb") else ""
    )


# -- putting it together ---------------------------------------------------------------------
def _layer(layers: dict, name: str, build) -> bool:
    """Build one layer, recording whether it held and why not."""
    try:
        layers[name] = {"held": True, "detail": build()}
    except OSError as error:
        layers[name] = {"held": False, "detail": str(error.strerror or error)}
    return layers[name]["held"]


def _namespace_flags(as_root: bool) -> int:
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    return flags if as_root else flags | CLONE_NEWUSER


def _unshare(as_root: bool) -> str:
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(_namespace_flags(as_root)), "unshare")
    if not as_root:
        # One uid and one gid, the user's own: an unprivileged process can map no other without
        # a set-uid helper (newuidmap), so there is no nobody to become here. Inside, the uid is
        # not 0, so the capabilities this namespace grants are gone once the child execs; and
        # the grader is in no namespace the child can see, signal or trace.
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    return "mount, PID, network, IPC and UTS" + ("" if as_root else ", in a user namespace")


def _own_children() -> list:
    found = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                found += [int(part) for part in handle.read().split()]
        except (OSError, ValueError):
            continue
    return found


def _sweep() -> None:
    """Without a PID namespace: kill whatever the child left (this process is their subreaper,
    so a double-forked daemon is reparented here, not to init) and reap it."""
    for _ in range(10_000):
        children = _own_children()
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.001)


def _wait_and_relay(pid: int, sweep: bool) -> None:
    """The parent, outside the sandbox: wait for its first process and end the same way (after
    ending every process it left, where no PID namespace does so)."""
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda *_: os.kill(pid, signal.SIGKILL))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if sweep:
        _sweep()
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _probe() -> None:
    """`{"probe": true}`: say what this machine allows, changing nothing (a throwaway process)."""
    as_root = os.geteuid() == 0
    namespaces = libc.unshare(_namespace_flags(as_root)) == 0
    error = "" if namespaces else os.strerror(ctypes.get_errno())
    print(
        json.dumps(
            {"root": as_root, "namespaces": namespaces, "namespaces_error": error, "landlock_abi": landlock_abi()}
        )
    )


def _user_tasks(uid: int) -> int:
    """Threads of `uid` on the machine: RLIMIT_NPROC counts them all, outside a user namespace."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count


def _skipped(layers: dict, name: str, skip: set) -> bool:
    if name in skip:
        layers[name] = {"held": False, "detail": SKIP_NOTE}
    return name in skip


def _refuse(config: dict, layers: dict) -> None:
    """Nothing hides the answer key: say so on the reply pipe and never run student code."""
    namespaces, landlock = layers["namespaces"]["detail"], layers.get("landlock", {}).get("detail")
    why = (
        "neither a private filesystem view (namespaces: "
        + namespaces
        + ") nor Landlock ("
        + (landlock or "not tried")
        + ") is available here"
    )
    # This file speaks English only: the grader words the reason in the grade's language from the code and values.
    refusal = {"code": "no_isolation", "namespaces": namespaces, "landlock": landlock}
    status = json.dumps({"sandbox": layers, "refused": why, "refusal": refusal}).encode()
    os.write(config["reply_fd"], struct.pack(">I", len(status)) + status)
    os._exit(70)


def main() -> None:
    config = json.loads(sys.argv[1])
    if config.get("probe"):
        return _probe()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the grader gone means this sandbox is gone
    if os.getppid() != config["grader_pid"]:
        os._exit(1)
    as_root = os.geteuid() == 0
    skip = set(config.get("skip", ()))
    layers: dict[str, dict] = {}
    view = False
    identity: tuple = ()  # (uid, lock fd) claimed when running as root
    if as_root:  # claimed here, held by the parent that waits, released when it exits
        first, count = config["uid_range"]
        identity = claim_identity(first, count, config["uid_lock_dir"], start=os.getpid() % count)
    if not _skipped(layers, "namespaces", skip) and _layer(layers, "namespaces", lambda: _unshare(as_root)):
        pid = os.fork()
        if pid:
            _wait_and_relay(pid, sweep=False)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()  # kill(0, ...) now reaches only this sandbox's own processes
        view = _layer(layers, "filesystem", lambda: _build_view(config))
    else:
        # No PID namespace to end the child's descendants: a parent that is their subreaper
        # ends them when the child is gone (and the grader kills its whole tree on a timeout).
        sweep = not _skipped(layers, "subreaper", skip) and _layer(
            layers,
            "subreaper",
            lambda: (
                _check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
                or "every process the child starts is ended with it"
            ),
        )
        pid = os.fork()
        if pid:
            _wait_and_relay(pid, sweep=sweep)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        layers["filesystem"] = {"held": False, "detail": "needs a mount namespace"}
    if as_root and view:
        _layer(layers, "unprivileged", lambda: _become_nobody(config, identity[0]))
        # Changing credentials clears the parent-death signal: set it again, or a sandbox whose
        # launcher is killed (a timeout) would live on with every process in it.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    elif as_root:
        layers["unprivileged"] = {
            "held": False,
            "detail": "runs as root: without a private view the "
            "interpreter may not be reachable by an unprivileged uid",
        }
    else:
        layers["unprivileged"] = {"held": True, "detail": f"uid {os.getuid()}, not root"}
    _layer(layers, "no_new_privs", lambda: _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs") or "set")
    env = dict(config["env"])
    if view:
        paths = {"workdir": VIEW_WORKDIR, **{name: _view_path(name) for name in config["mounts"]}}
    else:
        paths = _fallback_paths(config)
        env["TMPDIR"] = os.path.join(paths["workdir"], "tmp")  # the only writable folder
        if not as_root:  # counted before Landlock hides /proc
            config = {**config, "process_limit": config["process_limit"] + _user_tasks(os.getuid())}
        if not _skipped(layers, "landlock", skip):
            _layer(layers, "landlock", lambda: _landlock_view(config, paths))
    if not view and not layers.get("landlock", {}).get("held") and config["contain"]:
        _refuse(config, layers)
    _layer(layers, "resource_limits", lambda: _limit_resources(config))
    if not _skipped(layers, "seccomp", skip):
        _layer(layers, "seccomp", lambda: _install_seccomp(inet=layers["namespaces"]["held"]))
    os.chdir(paths["workdir"])
    status = json.dumps({"sandbox": layers, "paths": paths}).encode()
    os.write(config["reply_fd"], struct.pack(">I", len(status)) + status)
    argv = [
        config["python"],
        "-I",
        "-c",
        f"import sys; sys.path.insert(0, {os.path.dirname(paths['executor'])!r}); "
        "from executor.main import main; main()",
        json.dumps({**config["executor"], "paths": paths}),
    ]
    os.execve(config["python"], argv, env)


if __name__ == "__main__":
    try:
        main()
    except BaseException as error:  # a half-built sandbox must never run student code
        try:
            sys.stderr.write(f"dli-grade launcher: {type(error).__name__}: {error}\n")
        finally:
            os._exit(70)

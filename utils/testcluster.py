"""A test cluster of network namespaces on this one machine: several "hosts" for mpirun.

    python -m utils.testcluster up 3 [--prefix P]   # bridge, head + 3 host namespaces, agent, hostfile
    python -m utils.testcluster up 3 --hide DIR     # ... and DIR is visible on the first host only
    python -m utils.testcluster run [--prefix P] -- CMD...   # mpirun's command line, run in the head
    python -m utils.testcluster exec [--prefix P] -- CMD...  # any command in the head (the supervisor)
    python -m utils.testcluster down [--prefix P]   # kill every process inside, delete everything
    python -m utils.testcluster status              # the clusters and their processes

    with TestCluster.up(3, prefix=unique_prefix()) as cluster:   # tests
        cmd = cluster.mpirun_cmd(mpirun, ["-np", "6"], [python, "prog.py", ...])
        subprocess.run(cmd, env=cluster.env(base_env))

The layout: a bridge `P-br` with no address in the root namespace (so no packet
can leave the machine), one namespace per host (`P-head`, `P-n1`, ...) joined to
it by a veth pair, each with its own address in a private /24 and its own
hosts file (`/etc/netns/NAME/hosts`, which `ip netns exec` puts over
/etc/hosts). A host's name is its namespace's name. Open MPI starts its remote
daemons (`prted`) through a launch agent instead of ssh
(`PRTE_MCA_plm_ssh_agent`): a script that runs the command with
`ip netns exec HOST unshare --uts`, so each host also has its own host name,
and with a fresh environment, as ssh gives (the daemons would otherwise
inherit all of mpirun's, hiding what a real host lacks).
`mpirun` itself runs in the head namespace with `--hostfile`.

The namespaces share the machine's filesystem. `--hide DIR` (repeatable)
makes hosts that do not share it: every host but the first (where rank 0
runs) starts its daemon in a private mount namespace (`unshare --mount`) with
an empty tmpfs mounted over DIR. The mount dies with the host's processes.

Everything is named from the prefix (namespace and bridge names are global to
the machine), so `down --prefix P` finds what to delete even without the state
folder, is idempotent, and two clusters with different prefixes never meet.
`ip netns del` does not kill the processes inside a namespace: `down` kills
them first (`ip netns pids`), and waits for them to be gone.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PREFIX = "lacl"  # the cluster of `make run-cluster` and of the command line without --prefix
SLOTS = 2  # ranks per host before mpirun moves on to the next host
SUBNET = "10.213.7.0/24"  # private; the bridge is isolated, so every cluster may use the same one
NETNS_ETC = Path("/etc/netns")
STATE_ROOT = Path(tempfile.gettempdir())
IFNAME_MAX = 15  # Linux interface names (the bridge and the veth ends carry the prefix)
HEAD = "head"
REMOTE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a login shell's, as over ssh
KILL_TIMEOUT = 10.0  # seconds for the processes of a namespace to be gone after SIGKILL

AGENT = """#!/bin/sh
# Open MPI's launch agent for the test cluster {prefix} (in place of ssh):
#   AGENT [ssh-like options] HOST COMMAND...
# runs COMMAND as ssh would (one shell line, a fresh environment) inside
# HOST's network namespace, in a UTS namespace of its own named HOST.
while [ $# -gt 0 ]; do
    case $1 in -*) shift ;; *) break ;; esac
done
host=$1
shift
case $host in
    {prefix}-*) ;;
    *) echo "testcluster agent: $host is no host of cluster {prefix}" >&2; exit 255 ;;
esac
hidden={hidden}
if [ "$host" != {first} ] && [ -s "$hidden" ]; then
    # A private mount namespace in which an empty tmpfs covers each folder listed in $hidden.
    exec env -i PATH={path} HOME="$HOME" ip netns exec "$host" unshare --uts --mount sh -c \\
        'hostname "$1" && while IFS= read -r d; do mount -t tmpfs -o size=1m hidden "$d" || exit 1; done < "$2" && shift 2 && eval "$*"' \\
        sh "$host" "$hidden" "$@"
fi
exec env -i PATH={path} HOME="$HOME" ip netns exec "$host" unshare --uts sh -c 'hostname "$1" && shift && eval "$*"' sh "$host" "$@"
"""


class ClusterError(Exception):
    """The cluster cannot be made here (not root, no `ip`, ...) or a command failed."""


def unique_prefix(base: str = "lat") -> str:
    """A prefix no other run on this machine uses now: `base` plus this process's id in hex."""
    return f"{base}{os.getpid():x}"


def missing_requirements() -> str | None:
    """Why namespaces cannot be made here, in one line, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"no `{tool}` command"
    probe = f"latprobe{os.getpid():x}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if made.returncode != 0:
        return f"`ip netns add` fails: {made.stderr.strip()}"
    return None


def _check_prefix(prefix: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9]*", prefix):
        raise ClusterError(f"prefix {prefix!r}: a lower-case letter, then letters and digits")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ClusterError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class TestCluster:
    """N host namespaces and a head on one bridge; what mpirun needs to use them."""

    __test__ = False  # not a pytest test class despite its name
    prefix: str  # every name made starts with it
    hosts: tuple[str, ...]  # the worker hosts' names (= their namespaces), in hostfile order
    slots: int = SLOTS  # per host in the hostfile: -np N fills host 1 first, then host 2, ...
    subnet: str = SUBNET
    hidden: tuple[str, ...] = ()  # folders only the first host sees (--hide)

    @classmethod
    def named(cls, prefix: str, n: int, slots: int = SLOTS, subnet: str = SUBNET, hidden=()) -> "TestCluster":
        """The cluster of `n` hosts with this prefix (nothing is made)."""
        _check_prefix(prefix)
        if n < 1 or slots < 1:
            raise ClusterError("a cluster needs at least one host and one slot per host")
        return cls(prefix, tuple(f"{prefix}-n{i}" for i in range(1, n + 1)), slots, subnet,
                   tuple(os.path.abspath(folder) for folder in hidden))

    @classmethod
    def up(cls, n: int, prefix: str = DEFAULT_PREFIX, slots: int = SLOTS, subnet: str = SUBNET,
           hidden=()) -> "TestCluster":
        """Makes the cluster (any leftover of the same prefix is removed first) and returns it;
        the folders in `hidden` are seen by the first host only."""
        cluster = cls.named(prefix, n, slots, subnet, hidden)
        cluster.down()
        try:
            cluster._make()
        except BaseException:
            cluster.down()
            raise
        return cluster

    # --- names and files -------------------------------------------------------------

    @property
    def head(self) -> str:
        """The head node's name and namespace: mpirun runs here."""
        return f"{self.prefix}-{HEAD}"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def nodes(self) -> tuple[str, ...]:
        """The head, then the hosts."""
        return (self.head, *self.hosts)

    @property
    def folder(self) -> Path:
        """Where the agent and the hostfile live."""
        return STATE_ROOT / f"testcluster-{self.prefix}"

    @property
    def agent(self) -> Path:
        return self.folder / "agent.sh"

    @property
    def hostfile(self) -> Path:
        return self.folder / "hostfile"

    def veth(self, node: str) -> str:
        """The root namespace's end of `node`'s link to the bridge."""
        return f"{self.prefix}-v{self.nodes.index(node)}"

    def address(self, node: str) -> str:
        """`node`'s address in the subnet (head .1, hosts .2, .3, ...)."""
        return str(ipaddress.ip_network(self.subnet)[1 + self.nodes.index(node)])

    def hosts_file(self) -> str:
        """/etc/hosts of every namespace: localhost, and every node by name."""
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{self.address(node)} {node}" for node in self.nodes]
        return "\n".join(lines) + "\n"

    # --- using it ----------------------------------------------------------------------

    def env(self, base: dict | None = None) -> dict:
        """`base` (default: ours) plus what makes mpirun start its daemons through the agent."""
        env = dict(os.environ if base is None else base)
        env["PRTE_MCA_plm_ssh_agent"] = str(self.agent)
        env["PRTE_MCA_plm_ssh_no_tree_spawn"] = "1"  # the head starts every daemon itself
        return env

    def mpirun_cmd(self, mpirun: str, options, program) -> list[str]:
        """The command that runs `mpirun OPTIONS PROGRAM` from the head, over the hostfile."""
        return self.head_cmd([mpirun, "--hostfile", self.hostfile, "--bind-to", "none", *options, *program])

    def head_cmd(self, cmd) -> list[str]:
        """`cmd` run in the head namespace, named after it (e.g. utils/supervise.py, which starts mpirun)."""
        return ["ip", "netns", "exec", self.head, "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"',
                self.head, *map(str, cmd)]

    def lose(self, host: str, timeout: float = KILL_TIMEOUT) -> list[int]:
        """The host is lost, as a machine that dies: its namespace's name is removed first (so neither
        the launch agent nor anyone else reaches it from then on), then every process still inside it
        (prted too) is SIGKILLed until none is left, and its link removed. Returns the pids killed."""
        netns = os.stat(f"/run/netns/{host}").st_ino
        _ip("netns", "del", host)
        killed = _kill_until_none(lambda: _pids_in_netns(netns), f"lost host {host}", timeout)
        _ip("link", "del", self.veth(host), check=False)
        return killed

    # --- making and removing -----------------------------------------------------------

    def _make(self) -> None:
        if len(f"{self.prefix}-v{len(self.nodes)}") > IFNAME_MAX:
            raise ClusterError(f"prefix {self.prefix!r} too long for interface names ({IFNAME_MAX} characters)")
        if len(self.nodes) + 1 >= ipaddress.ip_network(self.subnet).num_addresses:
            raise ClusterError(f"{len(self.hosts)} hosts do not fit in {self.subnet}")
        self.folder.mkdir(parents=True, exist_ok=True)
        for folder in self.hidden:
            if not os.path.isdir(folder) or "\n" in folder:
                raise ClusterError(f"--hide: {folder!r} is not a folder")
        hidden = self.folder / "hidden"
        hidden.write_text("".join(f"{folder}\n" for folder in self.hidden))
        self.agent.write_text(AGENT.format(prefix=self.prefix, path=REMOTE_PATH, hidden=shlex.quote(str(hidden)),
                                           first=self.hosts[0]))
        self.agent.chmod(0o755)
        self.hostfile.write_text("".join(f"{host} slots={self.slots}\n" for host in self.hosts))
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        length = ipaddress.ip_network(self.subnet).prefixlen
        for node in self.nodes:
            _ip("netns", "add", node)
            _ip("link", "add", self.veth(node), "type", "veth", "peer", "name", "eth0", "netns", node)
            _ip("link", "set", self.veth(node), "master", self.bridge, "up")
            _ip("-n", node, "addr", "add", f"{self.address(node)}/{length}", "dev", "eth0")
            _ip("-n", node, "link", "set", "eth0", "up")
            _ip("-n", node, "link", "set", "lo", "up")
            (NETNS_ETC / node).mkdir(parents=True, exist_ok=True)
            (NETNS_ETC / node / "hosts").write_text(self.hosts_file())

    def down(self) -> list[int]:
        """Removes everything of this prefix (idempotent); returns the pids it had to kill."""
        return remove(self.prefix)


def namespaces(prefix: str) -> list[str]:
    """The namespaces on this machine whose names start with `prefix-`."""
    proc = _ip("netns", "list", check=False)
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    return [name for name in names if name.startswith(f"{prefix}-")]


def links(prefix: str) -> list[str]:
    """The root namespace's interfaces whose names start with `prefix-` (the bridge, veth ends)."""
    proc = _ip("-o", "link", "show", check=False)
    names = [line.split(":")[1].strip().split("@")[0] for line in proc.stdout.splitlines() if ":" in line]
    return [name for name in names if name.startswith(f"{prefix}-")]


def remove(prefix: str) -> list[int]:
    """Kills every process in the prefix's namespaces, then deletes them, the links, the hosts files and
    the state folder. Returns the pids killed."""
    _check_prefix(prefix)
    killed = []
    for name in namespaces(prefix):
        killed += _empty(name)
        _ip("netns", "del", name, check=False)
    for name in links(prefix):
        _ip("link", "del", name, check=False)
    for folder in NETNS_ETC.glob(f"{prefix}-*") if NETNS_ETC.is_dir() else ():
        shutil.rmtree(folder, ignore_errors=True)
    if NETNS_ETC.is_dir() and not any(NETNS_ETC.iterdir()):
        NETNS_ETC.rmdir()
    shutil.rmtree(STATE_ROOT / f"testcluster-{prefix}", ignore_errors=True)
    for session in STATE_ROOT.glob(f"ompi.{prefix}-*"):  # Open MPI's session folders of our hosts
        shutil.rmtree(session, ignore_errors=True)
    return killed


def namespace_pids(name: str) -> list[int]:
    """The processes inside namespace `name` (none if it does not exist)."""
    proc = _ip("netns", "pids", name, check=False)
    return [int(word) for word in proc.stdout.split()] if proc.returncode == 0 else []


def leftovers(prefix: str) -> list[str]:
    """What of the prefix still exists (namespaces, links, files); empty once `down` is done."""
    found = [f"namespace {n}" for n in namespaces(prefix)] + [f"link {n}" for n in links(prefix)]
    found += [str(p) for p in NETNS_ETC.glob(f"{prefix}-*")] if NETNS_ETC.is_dir() else []
    found += [str(p) for p in STATE_ROOT.glob(f"testcluster-{prefix}")]
    return found


def _empty(name: str, timeout: float = KILL_TIMEOUT) -> list[int]:
    """SIGKILLs the processes of namespace `name` until none is left (one may have started another
    meanwhile); fails after `timeout` s. Zombies count as gone. Returns the pids killed."""
    return _kill_until_none(lambda: namespace_pids(name), name, timeout)


def _kill_until_none(pids, what: str, timeout: float) -> list[int]:
    """SIGKILLs the live processes `pids()` lists until it lists none; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    killed = []
    while alive := [pid for pid in pids() if _alive(pid)]:
        if time.monotonic() >= deadline:
            raise ClusterError(f"processes of {what} still alive {timeout:g} s after SIGKILL: {alive}")
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    return sorted(set(killed))


def _pids_in_netns(inode: int) -> list[int]:
    """Every process whose network namespace is the one with this inode (named or not)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino == inode:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


# --- command line --------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m utils.testcluster",
                                     description="A test cluster of network namespaces for mpirun (root only).")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="make a cluster of N hosts and a head")
    up.add_argument("n", type=int, help="how many hosts")
    up.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"names start with it (default {DEFAULT_PREFIX})")
    up.add_argument("--slots", type=int, default=SLOTS, help=f"ranks per host in the hostfile (default {SLOTS})")
    up.add_argument("--hide", action="append", default=[], metavar="DIR",
                    help="hosts other than the first do not see DIR (an empty tmpfs over it; repeatable)")
    run = commands.add_parser("run", help="run mpirun with the given options and program from the head")
    run.add_argument("--prefix", default=DEFAULT_PREFIX)
    run.add_argument("--mpirun", default=str(Path(sys.executable).parent / "mpirun"), help="default: beside python")
    run.add_argument("args", nargs=argparse.REMAINDER, help="-- then mpirun's options and the program")
    run_head = commands.add_parser("exec", help="run a command in the head with the cluster's launch agent "
                                                "(e.g. utils/supervise.py --hostfile HOSTFILE -- ...)")
    run_head.add_argument("--prefix", default=DEFAULT_PREFIX)
    run_head.add_argument("args", nargs=argparse.REMAINDER, help="-- then the command")
    down = commands.add_parser("down", help="kill every process inside and delete the cluster (idempotent)")
    down.add_argument("--prefix", default=DEFAULT_PREFIX)
    commands.add_parser("status", help="the test clusters on this machine")
    return parser


def _up(args) -> int:
    started = time.perf_counter()
    cluster = TestCluster.up(args.n, args.prefix, args.slots, hidden=args.hide)
    print(f"cluster {cluster.prefix} up in {time.perf_counter() - started:.2f} s: head {cluster.head} "
          f"({cluster.address(cluster.head)}), hosts " + ", ".join(f"{h} ({cluster.address(h)})" for h in cluster.hosts))
    print(f"hostfile {cluster.hostfile}; agent {cluster.agent}")
    return 0


def _existing(prefix: str) -> TestCluster:
    hosts = sorted((name for name in namespaces(prefix) if name != f"{prefix}-{HEAD}"),
                   key=lambda name: int(name.rpartition("-n")[2]))
    if not hosts:
        raise ClusterError(f"no cluster {prefix} (run `up` first)")
    return TestCluster(prefix, tuple(hosts))


def _run(args) -> int:
    cluster = _existing(args.prefix)
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    cmd = cluster.mpirun_cmd(args.mpirun, [], rest)
    os.execvpe(cmd[0], cmd, cluster.env())  # mpirun takes this process's place: signals reach it


def _exec(args) -> int:
    cluster = _existing(args.prefix)
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    cmd = cluster.head_cmd(rest)
    os.execvpe(cmd[0], cmd, cluster.env())


def _down(args) -> int:
    killed = remove(args.prefix)
    print(f"cluster {args.prefix} down" + (f" (killed {len(killed)} processes)" if killed else ""))
    return 0


def _status(_args) -> int:
    proc = _ip("netns", "list", check=False)
    names = sorted(line.split()[0] for line in proc.stdout.splitlines() if line.strip())
    clusters = sorted({name.rsplit("-", 1)[0] for name in names if name.endswith(f"-{HEAD}")})
    if not clusters:
        print("no test cluster")
    for prefix in clusters:
        print(f"cluster {prefix}:")
        for name in namespaces(prefix):
            print(f"  {name}: {len(namespace_pids(name))} processes")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command != "status" and (why := missing_requirements()):
            raise ClusterError(why)
        return {"up": _up, "run": _run, "exec": _exec, "down": _down, "status": _status}[args.command](args)
    except ClusterError as exc:
        print(f"testcluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""A real Ray cluster on this machine that only speaks over loopback, for tests and benchmarks.

Ray binds to the machine's non-loopback interface by default (even with --node-ip-address
127.0.0.1), so the cluster lives in its own network namespace holding only ``lo``, and in its own
PID namespace: every process of the cluster dies with the namespace's first process, which dies
with the process that made it (``unshare --kill-child`` plus PR_SET_PDEATHSIG), even if the test
run is killed. Needs root (``unshare``); ``LoopbackCluster.start`` raises ``Unavailable`` otherwise.

    cluster = LoopbackCluster(cpus=(1, 1)).start()   # a head node and one more node, one CPU each
    subprocess.run(cluster.driver(["python", "-m", "depthstudio", ..., "--ray", cluster.address]))
    cluster.stop()
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PORT = 6379  # the namespace has its own ports: nothing else listens there


class Unavailable(RuntimeError):
    """This machine cannot host the loopback cluster (not root, no unshare, Ray missing...)."""


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class LoopbackCluster:
    def __init__(self, cpus: tuple[int, ...] = (1, 1), object_store_mb: int = 100):
        self.cpus, self.object_store_mb = tuple(cpus), object_store_mb
        self.holder: subprocess.Popen | None = None
        self.ns_pid: int | None = None
        self.temp = Path(tempfile.mkdtemp(prefix="dsray-", dir="/tmp"))  # short: Ray's socket paths
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                    "RAY_USAGE_STATS_ENABLED": "0",
                    # loopback only, in a namespace of its own: no token (Ray may have made one in ~/.ray)
                    "RAY_AUTH_MODE": "disabled"}
        self.nodes: list[dict] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORT}"

    # -- namespaces --------------------------------------------------------------------------------
    def start(self) -> LoopbackCluster:
        if os.geteuid() != 0:
            raise Unavailable("the loopback-only Ray cluster needs root (unshare -n)")
        for tool in ("unshare", "nsenter", "ip", "ray"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} is not installed")
        try:
            self.holder = subprocess.Popen(
                ["unshare", "--kill-child", "-n", "-p", "-f", "-m", "--mount-proc", "sh", "-c",
                 "ip link set lo up && echo up && exec sleep 86400"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        except OSError as exc:
            raise Unavailable(f"unshare failed: {exc}") from None
        line = self.holder.stdout.readline().strip()
        if line != "up":
            self.holder.kill()
            raise Unavailable(f"unshare -n failed: {self.holder.stderr.read().strip()[:300]}")
        children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children").read_text().split()
        self.ns_pid = int(children[0])
        try:
            self._start_nodes()
        except BaseException:
            self.stop()
            raise
        return self

    def inside(self, args: list[str], pid_ns: bool = True) -> list[str]:
        """A command line that runs ``args`` in the cluster's network (and PID + mount) namespace."""
        return ["nsenter", "-t", str(self.ns_pid), "-n", *(["-p", "-m"] if pid_ns else []), *args]

    def driver(self, args: list[str]) -> list[str]:
        """A driver process: in the network namespace only, so its PID is ours to signal."""
        return self.inside(args, pid_ns=False)

    def run(self, args: list[str], timeout: float = 120, pid_ns: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.inside(args, pid_ns), env=self.env, capture_output=True, text=True, timeout=timeout)

    def _start_nodes(self) -> None:
        common = ["--node-ip-address", "127.0.0.1", "--object-store-memory", str(self.object_store_mb * 2**20),
                  "--disable-usage-stats"]
        head = self.run(["ray", "start", "--head", "--port", str(PORT), "--num-cpus", str(self.cpus[0]),
                         "--include-dashboard=false", "--temp-dir", str(self.temp), *common])
        if head.returncode != 0:
            raise RuntimeError(f"ray start --head failed:\n{head.stdout[-2000:]}\n{head.stderr[-2000:]}")
        for cpus in self.cpus[1:]:
            node = self.run(["ray", "start", "--address", self.address, "--num-cpus", str(cpus), *common])
            if node.returncode != 0:
                raise RuntimeError(f"ray start (node) failed:\n{node.stdout[-2000:]}\n{node.stderr[-2000:]}")
        probe = (
            "import json, ray, time\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR')\n"
            f"deadline = time.time() + 60\n"
            f"while len([n for n in ray.nodes() if n['Alive']]) < {len(self.cpus)} and time.time() < deadline:\n"
            "    time.sleep(0.2)\n"
            "print(json.dumps([{'ip': n['NodeManagerAddress'], 'alive': n['Alive'], 'cpus': n['Resources'].get('CPU', 0)}"
            " for n in ray.nodes()]))\n"
        )
        out = self.run([sys.executable, "-c", probe], pid_ns=False)
        if out.returncode != 0:
            raise RuntimeError(f"cannot reach the cluster:\n{out.stderr[-2000:]}")
        self.nodes = [n for n in json.loads(out.stdout.strip().splitlines()[-1]) if n["alive"]]

    # -- workers -----------------------------------------------------------------------------------
    def same_namespace(self, pid: int) -> bool:
        try:
            return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{self.ns_pid}/ns/pid")
        except OSError:
            return False

    def worker_pids(self, title: str = "ray::_BatchWorker") -> dict[int, str]:
        """Actor processes of this cluster whose process title starts with ``title``: {pid: title}."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith(title) and self.same_namespace(int(entry.name)):
                found[int(entry.name)] = cmd
        return found

    def stop(self) -> None:
        if self.ns_pid is not None:
            try:
                self.run(["ray", "stop", "--force"], timeout=15)  # then the namespace goes, whatever is left
            except (subprocess.TimeoutExpired, OSError):
                pass
            try:
                os.kill(self.ns_pid, signal.SIGKILL)  # takes every process of the namespace with it
            except ProcessLookupError:
                pass
            self.ns_pid = None
        if self.holder is not None:
            try:
                self.holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.holder.kill()
            self.holder = None
        shutil.rmtree(self.temp, ignore_errors=True)


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

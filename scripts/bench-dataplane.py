#!/usr/bin/env python3
"""Load generator of scripts/bench-dataplane (standard library only).

Talks to a running haproxy-dataplaneapi over TLS (verified against --ca, basic auth with the
password read from --password-file) and to the VIPs haproxy serves, and prints four figures with
their targets. Every wait is bounded in time; the caller starts and stops the processes.
"""

import argparse
import base64
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time

MIB = 1024 * 1024
CFG = "/v2/services/haproxy/configuration"


class Api:
    """One keep-alive TLS connection to the API."""

    def __init__(self, args, ctx):
        self.args = args
        self.ctx = ctx
        self.conn = None
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().strip()
        token = base64.b64encode(f"{args.user}:{password}".encode()).decode()
        self.auth = f"Basic {token}"

    def connect(self):
        self.close()
        self.conn = http.client.HTTPSConnection("127.0.0.1", self.args.port, context=self.ctx, timeout=60)
        self.conn.connect()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, content_type="application/json"):
        """(status, headers, body bytes); reconnects once when the connection was closed."""
        headers = {"Authorization": self.auth}
        if body is not None:
            headers["Content-Type"] = content_type
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
        for attempt in (1, 2):
            if self.conn is None:
                self.connect()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, resp.headers, data
            except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method, path, body=None, content_type="application/json", expect=(200, 201, 202, 204)):
        status, headers, data = self.request(method, path, body, content_type)
        if status not in expect:
            sys.exit(f"bench-dataplane: {method} {path}: {status} {data[:500]!r}")
        return headers, (json.loads(data) if data else None)

    def version(self):
        return self.ok("GET", f"{CFG}/version")[1]


def proc_status(pid, key):
    """A /proc/PID/status field in bytes (VmHWM, VmRSS)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def percentile(sorted_values, p):
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def verdict(ok):
    return "met" if ok else "MISSED"


def peak_rss(args, ctx, clients=100, seconds=10.0):
    """Figure 1: VmHWM while `clients` keep-alive TLS connections each loop over GET requests."""
    paths = ["/v2/info", f"{CFG}/version", f"{CFG}/frontends", f"{CFG}/backends"]
    barrier = threading.Barrier(clients + 1, timeout=120)
    stop = threading.Event()
    done = [0] * clients
    failed = [0] * clients

    def client(i):
        api = Api(args, ctx)
        try:
            api.connect()
            barrier.wait()
        except (OSError, threading.BrokenBarrierError):
            failed[i] += 1
            return
        k = i
        while not stop.is_set():
            try:
                status, _, _ = api.request("GET", paths[k % len(paths)])
                if status == 200:
                    done[i] += 1
                else:
                    failed[i] += 1
            except (OSError, http.client.HTTPException):
                failed[i] += 1
                api.close()
            k += 1
        api.close()

    before = proc_status(args.api_pid, "VmRSS")
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.monotonic()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=max(1.0, 60 - (time.monotonic() - start)))
    elapsed = time.monotonic() - start
    hwm = proc_status(args.api_pid, "VmHWM")
    n, f = sum(done), sum(failed)
    print(
        f"1. peak RSS (VmHWM) of the API with {clients} concurrent keep-alive TLS clients doing GETs: "
        f"{hwm / MIB:.1f} MiB (target <= 16 MiB: {verdict(hwm <= 16 * MIB)}); "
        f"RSS before the clients {before / MIB:.1f} MiB; {n} requests in {elapsed:.1f} s "
        f"({n / elapsed:.0f}/s), {f} failed"
    )


def frontend_latency(api, base_config, count=1000, requests=300):
    """Figure 2: p50/p95 of GET .../frontends with `count` frontends in the configuration."""
    lines = [base_config.rstrip("\n"), ""]
    for i in range(count):
        lines += [f"frontend fe{i:04d}", "  mode tcp", ""]
    api.ok("POST", f"{CFG}/raw?skip_version=true&force_reload=true", "\n".join(lines), "text/plain")
    _, listed = api.ok("GET", f"{CFG}/frontends")
    if len(listed["data"]) != count:
        sys.exit(f"bench-dataplane: {len(listed['data'])} frontends listed, expected {count}")
    for _ in range(20):
        api.ok("GET", f"{CFG}/frontends")
    times = []
    size = 0
    for _ in range(requests):
        t0 = time.perf_counter()
        _, _, data = api.request("GET", f"{CFG}/frontends")
        times.append(time.perf_counter() - t0)
        size = len(data)
    times.sort()
    p50, p95 = percentile(times, 50) * 1000, percentile(times, 95) * 1000
    print(
        f"2. GET {CFG}/frontends with {count} frontends ({size} bytes), {requests} requests on one "
        f"keep-alive connection: p50 {p50:.2f} ms (target <= 5 ms: {verdict(p50 <= 5)}), p95 {p95:.2f} ms"
    )
    api.ok("POST", f"{CFG}/raw?skip_version=true&force_reload=true", base_config, "text/plain")


def tcp_backend():
    """A TCP server on loopback answering every connection with b'ok\\n'; returns its port."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)

    def serve():
        while True:
            conn, _ = listener.accept()
            try:
                conn.sendall(b"ok\n")
            except OSError:
                pass
            finally:
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def answers(addr, port, timeout=2.0):
    """Whether a new connection to addr:port gets the backends' answer."""
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            data = b""
            while len(data) < 3:
                chunk = s.recv(16)
                if not chunk:
                    break
                data += chunk
            return data == b"ok\n"
    except OSError:
        return False


def vip(i):
    return f"127.0.1.{i}"


def disk_latency(samples=30):
    """Context for figure 3: one durable atomic file replacement here (write, fsync, rename, fsync
    of the directory), as the API makes each change of a transaction durable."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fd = os.open("disk-probe.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"x" * 16384)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename("disk-probe.tmp", "disk-probe")
        d = os.open(".", os.O_RDONLY)
        try:
            os.fsync(d)
        finally:
            os.close(d)
        times.append(time.perf_counter() - t0)
    os.unlink("disk-probe")
    times.sort()
    print(
        f"   context: one durable file replacement on this disk (write 16 KiB, fsync, rename, fsync the "
        f"directory) p50 {percentile(times, 50) * 1000:.1f} ms, p95 {percentile(times, 95) * 1000:.1f} ms"
    )


def services(api, args, count=100):
    """Figure 3: one transaction creating `count` services, committed with force_reload=true."""
    servers = [tcp_backend(), tcp_backend()]
    times = []

    def timed(*request):
        t0 = time.monotonic()
        api.ok(*request)
        times.append(time.monotonic() - t0)

    start = time.monotonic()
    _, tx = api.ok("POST", f"/v2/services/haproxy/transactions?version={api.version()}")
    t = tx["id"]
    for i in range(1, count + 1):
        name, be = f"svc{i:03d}", f"svc{i:03d}-be"
        timed("POST", f"{CFG}/backends?transaction_id={t}", {"name": be, "mode": "tcp", "balance": {"algorithm": "roundrobin"}})
        for k, port in enumerate(servers):
            timed("POST", f"{CFG}/servers?backend={be}&transaction_id={t}", {"name": f"s{k}", "address": "127.0.0.1", "port": port})
        timed("POST", f"{CFG}/frontends?transaction_id={t}", {"name": name, "mode": "tcp", "default_backend": be})
        timed("POST", f"{CFG}/binds?frontend={name}&transaction_id={t}", {"name": "vip", "address": vip(i), "port": args.vip_port})
    built = time.monotonic()
    times.sort()
    api.ok("PUT", f"/v2/services/haproxy/transactions/{t}?force_reload=true")
    committed = time.monotonic()
    waiting = set(range(1, count + 1))
    deadline = committed + 30
    while waiting and time.monotonic() < deadline:
        for i in sorted(waiting):
            if answers(vip(i), args.vip_port, timeout=0.5):
                waiting.discard(i)
        if waiting:
            time.sleep(0.01)
    total = time.monotonic() - start
    if waiting:
        sys.exit(f"bench-dataplane: {len(waiting)} of {count} VIPs still silent 30 s after the commit")
    print(
        f"3. one transaction creating {count} services (frontend + bind + backend + 2 servers; "
        f"{1 + 5 * count} requests + commit with force_reload=true), start to all VIPs answering: "
        f"{total:.2f} s (target <= 2 s: {verdict(total <= 2)}); requests {built - start:.2f} s "
        f"(each p50 {percentile(times, 50) * 1000:.1f} ms, p95 {percentile(times, 95) * 1000:.1f} ms), "
        f"commit + reload {committed - built:.2f} s, VIPs up {start + total - committed:.2f} s after"
    )


def reloads_under_traffic(api, args, commits=50, count=100):
    """Figure 4: a client connecting anew for each request to one VIP during `commits` reloads."""
    stop = threading.Event()
    tally = {"requests": 0, "failed": 0}

    def steady():
        while not stop.is_set():
            ok = answers(vip(1), args.vip_port)
            tally["requests"] += 1
            tally["failed"] += 0 if ok else 1

    client = threading.Thread(target=steady, daemon=True)
    client.start()
    start = time.monotonic()
    for k in range(commits):
        name = f"svc{2 + k % (count - 1):03d}"
        _, fe = api.ok("GET", f"{CFG}/frontends/{name}")
        body = dict(fe["data"], maxconn=1000 + k)
        api.ok("PUT", f"{CFG}/frontends/{name}?version={api.version()}&force_reload=true", body)
        if time.monotonic() - start > 300:
            sys.exit("bench-dataplane: 50 commits took more than 300 s")
    elapsed = time.monotonic() - start
    time.sleep(0.5)
    stop.set()
    client.join(timeout=10)
    n, f = tally["requests"], tally["failed"]
    print(
        f"4. steady client (new TCP connection per request) on one VIP during {commits} commits "
        f"with force_reload=true ({elapsed:.1f} s): {n} requests, {f} failed (target 0: {verdict(f == 0)})"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--api-pid", type=int, required=True)
    p.add_argument("--config", required=True, help="the initial haproxy.cfg")
    p.add_argument("--vip-port", type=int, required=True)
    args = p.parse_args()
    ctx = ssl.create_default_context(cafile=args.ca)
    with open(args.config, encoding="utf-8") as f:
        base_config = f.read()
    api = Api(args, ctx)
    peak_rss(args, ctx)
    frontend_latency(api, base_config)
    services(api, args)
    disk_latency()
    reloads_under_traffic(api, args)
    print("peer: n/a: the Go Data Plane API cannot be built here (the targets are absolute)")


if __name__ == "__main__":
    main()

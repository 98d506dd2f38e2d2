#!/usr/bin/env python3
"""The scenarios of `make bench` (run it through scripts/bench.sh, which brings the
stack and the benchmark gateway up first).

Each figure is measured beside its limit in the same run: the service through the
gateway against pgbench running the service's own SQL, against bcrypt x cores, against
the storage backend used directly, against the service without the gateway, against a
raw HMAC. Data (users, tokens, polls, posts) is created through the API first and the
bench users are deleted at the end, which removes their data in every service.

Writes bench/results/results.{json,md,png}. Exits non-zero when any request of a
scenario was not a 2xx.
"""

import base64
import concurrent.futures as futures
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / ".stack"
WORK = STACK / "bench"
RESULTS = ROOT / "bench" / "results"
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"


def env_int(name, default):
    return int(os.environ.get(name, default))


GATEWAY = os.environ.get("BENCH_GATEWAY_URL", "http://127.0.0.1:8090")
DURATION = env_int("BENCH_DURATION", 8)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 16)
THREADS = env_int("BENCH_THREADS", 2)
USERS = env_int("BENCH_USERS", 360)
POLLS = env_int("BENCH_POLLS", 100)
POSTS = env_int("BENCH_POSTS", 60)
UPLOAD_MIB = env_int("BENCH_UPLOAD_MIB", 256)
# The services themselves, without the gateway (scripts/bench.sh asks stack.sh).
VOTE_URL = os.environ.get("BENCH_VOTE_URL", "http://127.0.0.1:8082")
# The floors' own HTTP servers (micro-benchmarks serve-nio / serve-hummingbird).
FLOOR_PORT = env_int("BENCH_FLOOR_PORT", 18997)


def log(message):
    print(f"bench: {message}", flush=True)


# --------------------------------------------------------------------------- HTTP


class Client:
    """One keep-alive connection per thread to the gateway; JSON in and out."""

    def __init__(self, base):
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname, parsed.port
        self.local = threading.local()

    def connection(self):
        if getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return self.local.conn

    def call(self, method, path, body=None, token=None, expect=(200, 201, 204)):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(2):
            conn = self.connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.local.conn = None
                if attempt == 1:
                    raise
        if response.status not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def parallel(function, items, workers=4):
    with futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


# --------------------------------------------------------------------------- the stack


def secret(name):
    for line in (STACK / "secrets.env").read_text().splitlines():
        if line.startswith(name + "="):
            return line.split("=", 1)[1]
    raise SystemExit(f"bench: {name} not in .stack/secrets.env; run make up")


def postgres_port():
    # postmaster.pid: line 4 is the port the running cluster listens on.
    return int((STACK / "pg" / "data" / "postmaster.pid").read_text().splitlines()[3])


def service_pid(service):
    return int((STACK / "run" / f"{service}.pid").read_text())


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postmaster_reaped_seconds():
    """cutime + cstime of the postmaster: the CPU of its children that have exited."""
    postmaster = int((STACK / "pg" / "data" / "postmaster.pid").read_text().splitlines()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def children_of(parent):
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    out.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return out


def component_pids(services):
    """Where CPU goes during a scenario: the benchmark gateway's nginx workers, the
    services' instances, and the cluster's PostgreSQL backends."""
    gateway_master = int((WORK / "nginx" / "nginx.pid").read_text())
    postmaster = int((STACK / "pg" / "data" / "postmaster.pid").read_text().splitlines()[0])
    instances = [int(p.read_text()) for service in services for p in (STACK / "run").glob(f"{service}*.pid")]
    return {"gateway": children_of(gateway_master), "service": instances, "postgres": children_of(postmaster)}


class CPUMeter:
    """CPU seconds each component used while a scenario ran, plus this script's children
    (wrk, pgbench: the load generators)."""

    def __init__(self, services=()):
        self.services = services

    def snapshot(self):
        pids = component_pids(self.services) if self.services else {"postgres": component_pids(())["postgres"]}
        snapshot = {name: {pid: cpu_seconds(pid) for pid in group} for name, group in pids.items()}
        # Backends that ended (pgbench's, at its exit) count in the postmaster's reaped time.
        snapshot["postgres"]["reaped"] = postmaster_reaped_seconds()
        return snapshot

    def __enter__(self):
        self.before = self.snapshot()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children_before = usage.ru_utime + usage.ru_stime
        return self

    def __exit__(self, *exc):
        after = self.snapshot()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.seconds = {name: sum(cpu - self.before.get(name, {}).get(pid, 0.0) for pid, cpu in group.items())
                        for name, group in after.items()}
        # A backend that ended during the scenario (a pool closing an idle connection) is in
        # the postmaster's reaped time with its whole life: take off what it had used before.
        gone = [pid for pid in self.before["postgres"] if pid != "reaped" and pid not in after["postgres"]]
        self.seconds["postgres"] -= sum(self.before["postgres"][pid] for pid in gone)
        self.seconds["load generator"] = usage.ru_utime + usage.ru_stime - self.children_before

    def per_operation(self, count):
        """Microseconds of CPU per request (or transaction), per component."""
        return {name: round(seconds / count * 1e6, 1) for name, seconds in self.seconds.items()} if count else {}


def command_version(argv, pattern=r"(\d+(?:\.\d+)+)"):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        match = re.search(pattern, out.stdout + out.stderr)
        return match.group(1) if match else "?"
    except OSError:
        return "?"


def machine():
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memoryGiB": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "swift": command_version(["swift", "--version"]),
        "postgres": command_version(["pgbench", "--version"]),
        "nginx": command_version(["nginx", "-v"]),
        "wrk": command_version(["wrk", "-v"]),
        "storageBackend": os.environ.get("BENCH_STORAGE_BACKEND", "filesystem"),
    }


# --------------------------------------------------------------------------- load tools


def wrk(url, mode="get", data_file=None, connections=CONNECTIONS, threads=THREADS, duration=DURATION, timeout=10):
    threads = min(threads, connections)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout}s",
            "-s", str(WRK_SCRIPT), url, "--", mode, str(data_file or ""), str(threads)]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()} {out.stdout[-500:]}")
    result = json.loads(lines[-1])
    seconds = result["durationMicros"] / 1e6
    result["rps"] = result["requests"] / seconds
    result["non2xx"] = result["statusErrors"] + result["socketErrors"] + result["timeouts"]
    for key in ("p50", "p90", "p99", "p999", "max"):
        result[key] = result[key] / 1000.0  # ms
    result["mean"] = result["mean"] / 1000.0
    return result


def pgbench(database, scripts, connections=CONNECTIONS, duration=DURATION):
    """tps of the scripts (chosen at random per transaction) as the service's own role."""
    argv = ["pgbench", "-h", "127.0.0.1", "-p", str(postgres_port()), "-U", database, "-n",
            "-M", "prepared", f"-c{connections}", f"-j{min(THREADS, connections)}", f"-T{duration}"]
    for script in scripts:
        argv += ["-f", f"{script}@1"]
    argv.append(database)
    environment = dict(os.environ, PGPASSWORD=secret(f"{database.upper()}_DB_PASSWORD"))
    out = subprocess.run(argv, capture_output=True, text=True, env=environment)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    if out.returncode != 0 or not tps:
        raise RuntimeError(f"pgbench failed: {out.stderr.strip()[-800:]}")
    if failed and int(failed.group(1)) > 0:
        raise RuntimeError(f"pgbench: {failed.group(1)} transactions failed")
    return {"tps": float(tps.group(1)), "latencyAverageMs": float(latency.group(1)) if latency else None}


def write_lua(path, value):
    def lua(v):
        if isinstance(v, dict):
            return "{" + ",".join(f"{k}={lua(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "{" + ",".join(lua(x) for x in v) + "}"
        return json.dumps(v)  # strings and numbers read the same in Lua
    path.write_text("return " + lua(value) + "\n")
    return path


def sql_literal(value):
    return "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------- seeding


class Seed:
    def __init__(self, client, run_id):
        self.client = client
        self.run_id = run_id
        self.users = []
        self.polls = []
        self.posts = []

    def signup(self, index):
        email = f"bench-{self.run_id}-{index}@bench.invalid"
        password = secrets.token_urlsafe(18)
        session = self.client.call("POST", "/auth/signup", {"email": email, "password": password, "name": f"Bench User {index}"})
        return {"id": session["user"]["id"], "email": email, "password": password, "token": session["accessToken"]}

    def create(self):
        started = time.monotonic()
        self.users = parallel(self.signup, range(USERS))
        authors = self.users[:10]

        def poll(index):
            author = authors[index % len(authors)]
            body = {"title": f"Bench poll {index}", "candidates": ["Alpha", "Beta", "Gamma"]}
            created = self.client.call("POST", "/polls", body, token=author["token"])
            return {"id": created["id"], "candidates": [c["id"] for c in created["candidates"]]}

        def post(index):
            author = authors[index % len(authors)]
            body = {"title": f"Bench post {index}", "content": "Some words about the voice memo of the day. " * 4}
            return self.client.call("POST", "/feeds", body, token=author["token"])["id"]

        self.polls = parallel(poll, range(POLLS))
        self.posts = parallel(post, range(POSTS))
        log(f"seeded {len(self.users)} users, {len(self.polls)} polls, {len(self.posts)} posts "
            f"through the gateway in {time.monotonic() - started:.0f} s")

    def delete(self):
        # DELETE /auth/me: auth's outbox removes each user's polls, votes, posts and
        # recordings in the other services.
        def gone(user):
            try:
                self.client.call("DELETE", "/auth/me", {"currentPassword": user["password"]}, token=user["token"],
                                 expect=(204, 401, 404))
            except Exception as error:  # a cleanup failure must not hide the results
                log(f"could not delete {user['email']}: {error}")
        parallel(gone, self.users)
        log(f"deleted the {len(self.users)} bench users (their data goes through the outbox)")


# --------------------------------------------------------------------------- scenarios


def scenario_gateway_overhead(results):
    """GET /health of vote, one connection, through the benchmark gateway and directly."""
    direct = wrk(f"{VOTE_URL}/health", connections=1, threads=1, duration=5)
    via = wrk(f"{GATEWAY}/health", connections=1, threads=1, duration=5)
    results["gatewayOverhead"] = {
        "direct": direct, "gateway": via, "addedP50Ms": via["p50"] - direct["p50"],
        "target": "added p50 <= 0.3 ms", "met": via["p50"] - direct["p50"] <= 0.3,
    }
    log(f"gateway overhead: p50 {direct['p50']:.3f} ms direct, {via['p50']:.3f} ms via nginx")
    # The framework's floor: vote's CPU per GET /health, directly, 4 connections.
    with CPUMeter(["vote"]) as cpu:
        health = wrk(f"{VOTE_URL}/health", connections=4, threads=2, duration=5)
    results["health"] = {"service": health, "cpuMicrosPerRequest": cpu.per_operation(health["requests"])}
    log(f"GET /health direct: {health['rps']:.0f} req/s, vote {results['health']['cpuMicrosPerRequest']['service']:.0f} µs per request")


def poll_read_sql(poll_id, viewer):
    # PollByID in Services/Vote/Sources/VoteService/PostgresVoteRepository.swift
    return (
        "SELECT p.id, p.title, p.created_by, p.created_at, p.closes_at, c.id, c.name, c.vote_count, v.candidate_id\n"
        "FROM polls p JOIN candidates c ON c.poll_id = p.id\n"
        f"LEFT JOIN votes v ON v.poll_id = p.id AND v.user_id = {sql_literal(viewer)}\n"
        f"WHERE p.id = {sql_literal(poll_id)} ORDER BY c.position;\n")


def vote_sql(poll_id, candidate_id):
    # InsertVote in Services/Vote/Sources/VoteService/PostgresVoteRepository.swift; the
    # user is new each time, as in the HTTP scenario.
    return (
        "INSERT INTO votes (poll_id, user_id, candidate_id)\n"
        "SELECT c.poll_id, gen_random_uuid(), c.id\n"
        "FROM candidates c JOIN polls p ON p.id = c.poll_id\n"
        f"WHERE c.poll_id = {sql_literal(poll_id)} AND c.id = {sql_literal(candidate_id)}"
        " AND (p.closes_at IS NULL OR p.closes_at > now())\n"
        "ON CONFLICT (poll_id, user_id) DO NOTHING RETURNING created_at;\n")


def per_poll_scripts(name, polls, make_sql):
    """One pgbench script per poll (pgbench takes at most 128), chosen at random."""
    folder = WORK / "pgbench"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, poll in enumerate(polls[:100]):
        path = folder / f"{name}-{index:03}.sql"
        path.write_text(make_sql(poll))
        paths.append(path)
    return paths


def ratio_entry(service, limit_value, limit_label, target):
    ratio = service["rps"] / limit_value if limit_value else 0.0
    return {"service": service, "limit": limit_value, "limitLabel": limit_label, "ratio": ratio,
            "target": target, "met": ratio >= target and service["non2xx"] == 0}


def scenario_poll_read(results, seed):
    data = write_lua(WORK / "poll.lua", {"polls": seed.polls, "tokens": [u["token"] for u in seed.users]})
    with CPUMeter(["vote"]) as service_cpu:
        service = wrk(f"{GATEWAY}/polls", mode="poll", data_file=data)
    viewer = seed.users[0]["id"]
    with CPUMeter() as limit_cpu:
        limit = pgbench("vote", per_poll_scripts("read", seed.polls, lambda p: poll_read_sql(p["id"], viewer)))
    results["pollRead"] = ratio_entry(service, limit["tps"], "pgbench, the same query", 0.5)
    results["pollRead"]["cpuMicrosPerRequest"] = service_cpu.per_operation(service["requests"])
    results["pollRead"]["limitCpuMicrosPerTransaction"] = limit_cpu.per_operation(limit["tps"] * DURATION)
    log(f"poll read: {service['rps']:.0f} req/s via gateway, pgbench {limit['tps']:.0f} tps")


def feed_page_sql(post_ids):
    # PostsNewest + the images query in Services/Feed/Sources/FeedService/PostgresPostRepository.swift
    ids = ",".join(sql_literal(i) for i in post_ids)
    return (
        "SELECT f.id, f.author_id, f.title, f.content, f.created_at, f.updated_at, a.name, a.id IS NOT NULL, f.created_at\n"
        "FROM feeds f LEFT JOIN authors a ON a.id = f.author_id\n"
        "WHERE (f.created_at, f.id) < ('infinity'::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)\n"
        "ORDER BY f.created_at DESC, f.id DESC LIMIT 21;\n"
        "SELECT id, feed_id, content_type, size_bytes, sha256, object_key FROM feed_images\n"
        f"WHERE feed_id = ANY(ARRAY[{ids}]::uuid[]) ORDER BY feed_id, position;\n")


def scenario_feed_page(results, seed, client):
    page = client.call("GET", "/feeds?limit=20")
    ids = [item["id"] for item in page["items"]]
    if not all(item["author"]["name"] for item in page["items"]):
        raise RuntimeError("feed page without author names")
    with CPUMeter(["feed"]) as service_cpu:
        service = wrk(f"{GATEWAY}/feeds?limit=20")
    path = WORK / "pgbench" / "feed-page.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(feed_page_sql(ids))
    with CPUMeter() as limit_cpu:
        limit = pgbench("feed", [path])
    results["feedPage"] = ratio_entry(service, limit["tps"], "pgbench, the same two queries", 0.4)
    results["feedPage"]["cpuMicrosPerRequest"] = service_cpu.per_operation(service["requests"])
    results["feedPage"]["limitCpuMicrosPerTransaction"] = limit_cpu.per_operation(limit["tps"] * DURATION)
    log(f"feed page: {service['rps']:.0f} req/s via gateway, pgbench {limit['tps']:.0f} tps")


def scenario_vote(results, seed):
    data = write_lua(WORK / "vote.lua", {"polls": seed.polls, "tokens": [u["token"] for u in seed.users]})
    with CPUMeter(["vote"]) as service_cpu:
        service = wrk(f"{GATEWAY}/polls", mode="vote", data_file=data)
    if service["exhausted"]:
        raise RuntimeError(f"vote: every (user, poll) pair was used before the end; raise BENCH_USERS (now {USERS})")
    with CPUMeter() as limit_cpu:
        limit = pgbench("vote", per_poll_scripts("vote", seed.polls, lambda p: vote_sql(p["id"], p["candidates"][0])))
    results["vote"] = ratio_entry(service, limit["tps"], "pgbench, the same INSERT", 0.4)
    results["vote"]["cpuMicrosPerRequest"] = service_cpu.per_operation(service["requests"])
    results["vote"]["limitCpuMicrosPerTransaction"] = limit_cpu.per_operation(limit["tps"] * DURATION)
    log(f"vote: {service['rps']:.0f} req/s via gateway, pgbench {limit['tps']:.0f} tps")


def scenario_login(results, seed, micro):
    """Logins saturate bcrypt while a one-connection reader watches GET /polls/{id}."""
    polls = write_lua(WORK / "poll.lua", {"polls": seed.polls, "tokens": [u["token"] for u in seed.users]})
    logins = write_lua(WORK / "login.lua", {"logins": [{"email": u["email"], "password": u["password"]} for u in seed.users]})
    # Paced at ~100 requests/s, so that p99 rests on ~1000 samples in each phase.
    duration = max(DURATION, 10)
    idle = wrk(f"{GATEWAY}/polls", mode="probe", data_file=polls, connections=1, threads=1, duration=duration)
    with futures.ThreadPoolExecutor(max_workers=2) as pool:
        loaded_probe = pool.submit(wrk, f"{GATEWAY}/polls", "probe", polls, 1, 1, duration)
        login = pool.submit(wrk, f"{GATEWAY}/auth/login", "login", logins, 2 * micro["cores"], 2, duration, 30).result()
        probe = loaded_probe.result()
    limit = micro["cores"] * micro["bcryptVerifyPerSecond"]
    entry = ratio_entry(login, limit, f"{micro['cores']} cores x bcrypt verify (cost {micro['bcryptCost']})", 0.8)
    entry["pollReadIdle"] = idle
    entry["pollReadUnderLogin"] = probe
    entry["pollReadP99Factor"] = probe["p99"] / idle["p99"] if idle["p99"] else 0.0
    entry["met"] = entry["met"] and entry["pollReadP99Factor"] <= 3 and probe["non2xx"] == 0 and idle["non2xx"] == 0
    results["login"] = entry
    log(f"login: {login['rps']:.1f}/s (limit {limit:.1f}/s); poll read probe (~100/s) p99 {idle['p99']:.2f} ms idle, "
        f"{probe['p99']:.2f} ms under login load")


class MemorySampler:
    """Peak RSS of a process while a transfer runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def curl_transfer(argv):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"] + argv,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"curl failed: {out.stderr.strip()}")
    status, seconds = out.stdout.split()
    return int(status), float(seconds)


def storage_direct(file, size):
    """The same bytes written and read by the backend recording uses, without the service."""
    backend = os.environ.get("BENCH_STORAGE_BACKEND", "filesystem")
    chunk = 256 * 1024
    if backend == "filesystem":
        # What FileSystemObjectStorage does: a .part file in buffered 256 KiB writes,
        # fsync, rename into place; reading streams it back.
        root = STACK / "storage" / "recording" / ".incoming"
        root.mkdir(parents=True, exist_ok=True)
        part, final = root / "bench-direct.part", root / "bench-direct.bin"
        started = time.monotonic()
        with open(file, "rb") as source, open(part, "wb", buffering=0) as target:
            while block := source.read(chunk):
                target.write(block)
            os.fsync(target.fileno())
        os.rename(part, final)
        write_seconds = time.monotonic() - started
        started = time.monotonic()
        with open(final, "rb") as source:
            while source.read(chunk):
                pass
        read_seconds = time.monotonic() - started
        final.unlink()
        return write_seconds, read_seconds
    import boto3  # s3: the same SeaweedFS, over the S3 protocol, from here
    s3 = boto3.client("s3", endpoint_url=os.environ["BENCH_S3_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=secret("S3_ACCESS_KEY_ID"), aws_secret_access_key=secret("S3_SECRET_ACCESS_KEY"))
    started = time.monotonic()
    with open(file, "rb") as source:
        s3.put_object(Bucket="recording", Key="bench-direct.bin", Body=source, ContentLength=size)
    write_seconds = time.monotonic() - started
    started = time.monotonic()
    body = s3.get_object(Bucket="recording", Key="bench-direct.bin")["Body"]
    while body.read(chunk):
        pass
    read_seconds = time.monotonic() - started
    s3.delete_object(Bucket="recording", Key="bench-direct.bin")
    return write_seconds, read_seconds


def scenario_transfer(results, seed):
    size = UPLOAD_MIB * 1024 * 1024
    file = WORK / "upload.bin"
    if not file.exists() or file.stat().st_size != size:
        with open(file, "wb") as out:
            for _ in range(UPLOAD_MIB):
                out.write(os.urandom(1024 * 1024))
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    token = seed.users[-1]["token"]
    pid = service_pid("recording")
    uploads, downloads, static_downloads, growth = [], [], [], []
    direct_writes, direct_reads = [], []
    for attempt in range(3):
        w, r = storage_direct(file, size)
        direct_writes.append(w)
        direct_reads.append(r)
        before = rss_kib(pid)
        with MemorySampler(pid) as sampler:
            out = subprocess.run(
                ["curl", "-sS", "-w", "\n%{http_code} %{time_total}", "--data-binary", f"@{file}",
                 "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: audio/wav",
                 f"{GATEWAY}/recordings?fileName=bench-{attempt}.wav"], capture_output=True, text=True)
            body, _, tail = out.stdout.rpartition("\n")
            status, seconds = tail.split()
            if status != "201":
                raise RuntimeError(f"upload: HTTP {status} {body[:300]}")
            recording = json.loads(body)
            if recording["sha256"] != digest or recording["sizeBytes"] != size:
                raise RuntimeError("upload: the stored recording is not the file sent")
            uploads.append(float(seconds))
            status, seconds = curl_transfer(["-H", f"Authorization: Bearer {token}", f"{GATEWAY}/recordings/{recording['id']}/content"])
            if status != 200:
                raise RuntimeError(f"download: HTTP {status}")
            downloads.append(seconds)
            # The download's limit: the gateway sending the same bytes as a static file
            # (scripts/bench.sh's /bench-static/ location on this folder).
            status, seconds = curl_transfer([f"{GATEWAY}/bench-static/{file.name}"])
            if status != 200:
                raise RuntimeError(f"download (static file): HTTP {status}")
            static_downloads.append(seconds)
        growth.append((sampler.peak - before) / 1024)
    mib = size / 1024 / 1024

    def entry(service_seconds, direct_seconds, what, target):
        service_rate, direct_rate = mib / statistics.median(service_seconds), mib / statistics.median(direct_seconds)
        ratio = service_rate / direct_rate
        memory = max(growth)
        return {"serviceMiBps": service_rate, "limitMiBps": direct_rate, "ratio": ratio, "limitLabel": what,
                "serviceSeconds": service_seconds, "directSeconds": direct_seconds, "memoryGrowthMiB": memory,
                "target": target, "met": ratio >= target and memory <= 64}

    results["upload"] = entry(uploads, direct_writes, "the storage backend writing the same bytes", 0.5)
    results["download"] = entry(downloads, static_downloads, "the gateway sending the same bytes as a static file", 0.8)
    results["download"]["storeReadMiBps"] = mib / statistics.median(direct_reads)
    results["transferMiB"] = mib
    log(f"upload {results['upload']['serviceMiBps']:.0f} MiB/s (direct {results['upload']['limitMiBps']:.0f}), "
        f"download {results['download']['serviceMiBps']:.0f} MiB/s (static file {results['download']['limitMiBps']:.0f}, "
        f"the store reading {results['download']['storeReadMiBps']:.0f}), "
        f"recording RSS growth <= {max(growth):.1f} MiB")


def scenario_micro(results):
    binary = Path(os.environ.get("BENCH_MICRO_BINARY", ROOT / ".build" / "release" / "micro-benchmarks"))
    out = subprocess.run([str(binary), "--bcrypt-cost", os.environ.get("BENCH_BCRYPT_COST", "12")],
                         capture_output=True, text=True, check=True)
    micro = json.loads(out.stdout)
    ratio = micro["jwtVerifyPerSecond"] / micro["hmacSHA256PerSecond"]
    results["jwt"] = {**micro, "verifyRatio": ratio, "signRatio": micro["jwtSignPerSecond"] / micro["hmacSHA256PerSecond"],
                      "target": 0.5, "met": ratio >= 0.5}
    log(f"JWT: verify {micro['jwtVerifyPerSecond']:.0f}/s, sign {micro['jwtSignPerSecond']:.0f}/s, "
        f"HMAC {micro['hmacSHA256PerSecond']:.0f}/s; bcrypt {micro['bcryptVerifyPerSecond']:.2f}/s per core")
    return micro


def scenario_floors(results):
    """What the building blocks cost alone on this machine, under the scenarios' own load
    shapes: nginx answering by itself and proxying the cheapest request; SwiftNIO and
    Hummingbird with nothing of ours on top; postgres-nio running the pgbench scripts of
    the scenarios above, alone and inside a Hummingbird route (the two with the hops
    between them). A CPU target below its floor is out of this stack's reach."""
    floors = {}
    with CPUMeter(["vote"]) as cpu:
        run = wrk(f"{GATEWAY}/bench-floor")
    floors["nginxReturn"] = {"rps": run["rps"], "connections": CONNECTIONS, **cpu.per_operation(run["requests"])}
    with CPUMeter(["vote"]) as cpu:
        run = wrk(f"{GATEWAY}/health")
    floors["nginxProxyHealth"] = {"rps": run["rps"], "connections": CONNECTIONS, **cpu.per_operation(run["requests"])}
    binary = Path(os.environ.get("BENCH_MICRO_BINARY", ROOT / ".build" / "release" / "micro-benchmarks"))

    def database(name):
        return dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(postgres_port()), PGUSER=name, PGDATABASE=name,
                    PGPASSWORD=secret(f"{name.upper()}_DB_PASSWORD"))

    def scripts(pattern):
        return sorted(str(p) for p in (WORK / "pgbench").glob(pattern))

    servers = (("swiftNIO", ["serve-nio"], None), ("hummingbird", ["serve-hummingbird"], None),
               ("hummingbirdPollRead", ["serve-hummingbird-postgres", *scripts("read-*.sql")], "vote"),
               ("hummingbirdVote", ["serve-hummingbird-postgres", *scripts("vote-*.sql")], "vote"),
               ("hummingbirdFeedPage", ["serve-hummingbird-postgres", *scripts("feed-page.sql")], "feed"))
    for key, (mode, *extra), database_name in servers:
        server = subprocess.Popen([str(binary), mode, str(FLOOR_PORT), *extra],
                                  env=database(database_name) if database_name else None)
        try:
            url = f"http://127.0.0.1:{FLOOR_PORT}/health"
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(url, timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"{mode} did not answer on port {FLOOR_PORT}")
                    time.sleep(0.1)
            floors[key] = {}
            for connections in (4, CONNECTIONS):
                before = cpu_seconds(server.pid)
                with CPUMeter() as cpu:
                    run = wrk(url, connections=connections, threads=THREADS, duration=5)
                floors[key][str(connections)] = {"rps": run["rps"],
                                                 "server": round((cpu_seconds(server.pid) - before) / run["requests"] * 1e6, 1),
                                                 "postgres": cpu.per_operation(run["requests"])["postgres"]}
        finally:
            server.terminate()
            server.wait(timeout=20)
    for key, database_name, pattern in (("postgresPollRead", "vote", "read-*.sql"), ("postgresVote", "vote", "vote-*.sql"),
                                        ("postgresFeedPage", "feed", "feed-page.sql")):
        with CPUMeter() as cpu:
            out = subprocess.run([str(binary), "postgres", str(DURATION), str(CONNECTIONS), *scripts(pattern)],
                                 capture_output=True, text=True, env=database(database_name))
        if out.returncode != 0:
            raise RuntimeError(f"micro-benchmarks postgres: {out.stderr.strip()[-500:]}")
        run = json.loads(out.stdout.strip().splitlines()[-1])
        # The meter counts this run's warm-up second in PostgreSQL's time too: scale it out.
        postgres = cpu.seconds["postgres"] * run["seconds"] / (run["seconds"] + 1)
        floors[key] = {"tps": run["transactions"] / run["seconds"],
                       "client": round(run["cpuSeconds"] / run["transactions"] * 1e6, 1),
                       "postgres": round(postgres / run["transactions"] * 1e6, 1)}
    results["floors"] = floors
    log("floors: " + json.dumps(floors))


# --------------------------------------------------------------------------- report


def report(results):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]

    def yes(ok):
        return "yes" if ok else "**no**"

    def lat(r):
        return f"{r['p50']:.2f} / {r['p99']:.2f} / {r['p999']:.2f}"

    rows = []
    for key, name in (("vote", "vote `POST /polls/{id}/votes`"), ("pollRead", "poll read `GET /polls/{id}`"),
                      ("feedPage", "feed page `GET /feeds?limit=20`"), ("login", "login `POST /auth/login`")):
        e = results[key]
        s = e["service"]
        rows.append(f"| {name} | {s['rps']:,.1f} req/s | {lat(s)} | {s['non2xx']} | {e['limit']:,.1f}/s ({e['limitLabel']}) "
                    f"| {e['ratio']:.2f} | >= {e['target']} | {yes(e['met'])} |")
    login = results["login"]
    rows.append(f"| poll read probe during login load (1 conn., ~100/s) | {login['pollReadUnderLogin']['rps']:,.0f} req/s "
                f"| {lat(login['pollReadUnderLogin'])} | {login['pollReadUnderLogin']['non2xx']} "
                f"| idle p99 {login['pollReadIdle']['p99']:.2f} ms | p99 x{login['pollReadP99Factor']:.2f} | <= 3x | "
                f"{yes(login['pollReadP99Factor'] <= 3)} |")
    for key, name in (("upload", "upload"), ("download", "download")):
        e = results[key]
        rows.append(f"| {name} {results['transferMiB']:.0f} MiB | {e['serviceMiBps']:,.0f} MiB/s | median of "
                    f"{len(e['serviceSeconds'])}: {statistics.median(e['serviceSeconds']):.2f} s | 0 "
                    f"| {e['limitMiBps']:,.0f} MiB/s ({e['limitLabel']}"
                + (f"; the store reading them: {e['storeReadMiBps']:,.0f} MiB/s" if "storeReadMiBps" in e else "")
                + f") | {e['ratio']:.2f} "
                    f"| >= {e['target']}, RSS +{e['memoryGrowthMiB']:.1f} MiB (<= 64) | {yes(e['met'])} |")
    g = results["gatewayOverhead"]
    rows.append(f"| gateway overhead `GET /health` (1 conn.) | {g['gateway']['rps']:,.0f} req/s | {lat(g['gateway'])} "
                f"| {g['gateway']['non2xx']} | direct: {lat(g['direct'])} ms | +{g['addedP50Ms']:.3f} ms p50 "
                f"| <= +0.3 ms | {yes(g['met'])} |")
    j = results["jwt"]
    rows.append(f"| JWT verify (in process) | {j['jwtVerifyPerSecond']:,.0f}/s | - | - | {j['hmacSHA256PerSecond']:,.0f}/s "
                f"(libcrypto's one-shot HMAC-SHA256 of the {j['tokenBytes']:.0f}-byte token's signed part; "
                f"keyed context alone: {j['hmacSHA256KeyedPerSecond']:,.0f}/s) | {j['verifyRatio']:.2f} | >= 0.5 | {yes(j['met'])} |")
    rows.append(f"| JWT sign (in process) | {j['jwtSignPerSecond']:,.0f}/s | - | - | {j['hmacSHA256PerSecond']:,.0f}/s "
                f"| {j['signRatio']:.2f} | - | - |")
    text = f"""# Benchmark results

{results['finishedAt']} · `make bench` · {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB,
Linux {m['kernel']}, Swift {m['swift']}, PostgreSQL {m['postgres']}, nginx {m['nginx']}, wrk {m['wrk']},
recording storage: {m['storageBackend']}. Everything (load generator, gateway, services,
PostgreSQL) shares these cores, and each limit was measured in the same run.

Load: wrk, {CONNECTIONS} connections, {THREADS} threads, {DURATION} s per scenario (login: {2 * j['cores']:.0f}
connections); pgbench with the same connection count, prepared statements. Latency in ms
(p50 / p99 / p99.9). Non-2xx counts every status >= 400 and every socket error or timeout.

| scenario | through the gateway | latency ms p50 / p99 / p99.9 | non-2xx | limit, same run | ratio | target | met |
|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n\n" + cpu_table(results) + "\n![throughput and latency per scenario](results.png)\n"
    (RESULTS / "results.md").write_text(text)
    chart(results)
    readme_section(text)


def readme_section(text):
    """The README shows the latest results: everything of results.md below its title,
    between the bench markers, with the chart's path from the top of the repository."""
    readme = ROOT / "README.md"
    content = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in content or end not in content:
        return
    body = text.split("\n", 2)[2].replace("](results.png)", "](bench/results/results.png)").strip()
    before, rest = content.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n{body}\n{end}{after}")


def cpu_table(results):
    """Where each request's CPU went: the ratios above are bounded by this split."""
    lines = ["CPU per request in µs (from /proc, over the whole scenario), and per pgbench transaction:", "",
             "| scenario | load generator | gateway (nginx) | service | PostgreSQL | total | pgbench: client + PostgreSQL |",
             "|---|---|---|---|---|---|---|"]
    for key, name in (("vote", "vote"), ("pollRead", "poll read"), ("feedPage", "feed page (feed)")):
        c = results[key]["cpuMicrosPerRequest"]
        l = results[key]["limitCpuMicrosPerTransaction"]
        total = sum(c.values())
        lines.append(f"| {name} | {c['load generator']:.0f} | {c['gateway']:.0f} | {c['service']:.0f} | {c['postgres']:.0f} "
                     f"| {total:.0f} | {l['load generator']:.0f} + {l['postgres']:.0f} = {l['load generator'] + l['postgres']:.0f} |")
    if "health" in results:
        c = results["health"]["cpuMicrosPerRequest"]
        lines.append(f"| `GET /health` (vote directly, 4 conn., {results['health']['service']['rps']:,.0f} req/s) "
                     f"| {c['load generator']:.0f} | - | {c['service']:.0f} | - | {c['load generator'] + c['service']:.0f} | - |")
    if "floors" in results:
        lines += ["", floors_table(results["floors"])]
    return "\n".join(lines) + "\n"


def floors_table(f):
    """The building blocks alone (scenario_floors): the least each row above can cost."""
    n, h = f["swiftNIO"], f["hummingbird"]
    lines = ["Floors: the same building blocks with nothing of ours on top, CPU per request (or transaction) in µs, same run:", "",
             "| floor | rate | gateway (nginx) | server or client | PostgreSQL |",
             "|---|---|---|---|---|",
             f"| nginx answering by itself (`return 200`), {f['nginxReturn']['connections']} conn. "
             f"| {f['nginxReturn']['rps']:,.0f} req/s | {f['nginxReturn']['gateway']:.0f} | - | - |",
             f"| nginx proxying `GET /health` to vote, {f['nginxProxyHealth']['connections']} conn. "
             f"| {f['nginxProxyHealth']['rps']:,.0f} req/s | {f['nginxProxyHealth']['gateway']:.0f} "
             f"| vote {f['nginxProxyHealth']['service']:.0f} | - |"]
    for name, floor in (("SwiftNIO HTTP/1.1, fixed 2-byte answer", n), ("Hummingbird, one route, no middleware", h)):
        for connections, run in floor.items():
            lines.append(f"| {name}, directly, {connections} conn. | {run['rps']:,.0f} req/s | - | {run['server']:.0f} | - |")
    for key, name in (("hummingbirdPollRead", "poll read's query"), ("hummingbirdVote", "vote's INSERT"),
                      ("hummingbirdFeedPage", "feed page's two queries")):
        for connections, run in f.get(key, {}).items():
            lines.append(f"| Hummingbird route running {name} on postgres-nio's pool, directly, {connections} conn. "
                         f"| {run['rps']:,.0f} req/s | - | {run['server']:.0f} | {run['postgres']:.0f} |")
    for key, name in (("postgresPollRead", "poll read's query"), ("postgresVote", "vote's INSERT"),
                      ("postgresFeedPage", "feed page's two queries")):
        p = f[key]
        lines.append(f"| postgres-nio running {name} ({CONNECTIONS} tasks) | {p['tps']:,.0f}/s | - | {p['client']:.0f} | {p['postgres']:.0f} |")
    return "\n".join(lines) + "\n"


def chart(results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["vote", "poll read", "feed page", "login", "upload", "download", "JWT verify"]
    service = [results["vote"]["service"]["rps"], results["pollRead"]["service"]["rps"],
               results["feedPage"]["service"]["rps"], results["login"]["service"]["rps"],
               results["upload"]["serviceMiBps"], results["download"]["serviceMiBps"], results["jwt"]["jwtVerifyPerSecond"]]
    limits = [results["vote"]["limit"], results["pollRead"]["limit"], results["feedPage"]["limit"], results["login"]["limit"],
              results["upload"]["limitMiBps"], results["download"]["limitMiBps"], results["jwt"]["hmacSHA256PerSecond"]]
    targets = [0.4, 0.5, 0.4, 0.8, 0.5, 0.8, 0.5]
    units = ["req/s", "req/s", "req/s", "req/s", "MiB/s", "MiB/s", "ops/s"]

    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    x = range(len(names))
    width = 0.38
    left.bar([i - width / 2 for i in x], service, width, label="service (through the gateway)", color="#3b7dd8")
    left.bar([i + width / 2 for i in x], limits, width, label="limit, same run", color="#b9c4d0")
    left.set_yscale("log")
    left.set_xticks(list(x))
    left.set_xticklabels([f"{n}\n({u})" for n, u in zip(names, units)], fontsize=8)
    for i, (s, l, t) in enumerate(zip(service, limits, targets)):
        ratio = s / l if l else 0
        left.annotate(f"{ratio:.2f}\n(≥{t})", (i, max(s, l)), textcoords="offset points", xytext=(0, 4), ha="center",
                      fontsize=8, color="#1a7f37" if ratio >= t else "#cf222e")
    left.set_title("Throughput beside its limit (ratio, target)")
    left.legend(fontsize=8, loc="upper left")
    left.set_ylim(top=max(limits + service) * 8)

    latency_names = ["vote", "poll read", "feed page", "login", "health\n(gateway)", "health\n(direct)"]
    runs = [results["vote"]["service"], results["pollRead"]["service"], results["feedPage"]["service"],
            results["login"]["service"], results["gatewayOverhead"]["gateway"], results["gatewayOverhead"]["direct"]]
    y = range(len(runs))
    for offset, key, color in ((-0.25, "p50", "#3b7dd8"), (0, "p99", "#f0a030"), (0.25, "p999", "#cf222e")):
        right.barh([i + offset for i in y], [r[key] for r in runs], 0.25, label=key.replace("p999", "p99.9"), color=color)
    right.set_xscale("log")
    right.set_yticks(list(y))
    right.set_yticklabels(latency_names, fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("latency (ms, log scale)")
    right.set_title("Latency through the gateway")
    right.legend(fontsize=8)
    m = results["machine"]
    figure.suptitle(f"make bench · {m['cores']} cores {m['cpu']} · {results['finishedAt']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(RESULTS / "results.png", dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------- main


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    client = Client(GATEWAY)
    results = {"machine": machine(), "settings": {
        "durationSeconds": DURATION, "connections": CONNECTIONS, "threads": THREADS, "users": USERS, "polls": POLLS,
        "posts": POSTS, "uploadMiB": UPLOAD_MIB}}
    micro = scenario_micro(results)
    seed = Seed(client, datetime.datetime.now().strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(2))
    seed.create()
    try:
        scenario_gateway_overhead(results)
        scenario_poll_read(results, seed)
        scenario_feed_page(results, seed, client)
        scenario_vote(results, seed)
        scenario_login(results, seed, micro)
        scenario_transfer(results, seed)
        scenario_floors(results)
    finally:
        seed.delete()
    results["finishedAt"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["elapsedSeconds"] = round(time.monotonic() - started)
    report(results)
    failures = [k for k, v in results.items() if isinstance(v, dict) and "service" in v and v["service"]["non2xx"] > 0]
    for key in ("pollReadIdle", "pollReadUnderLogin"):
        if results["login"][key]["non2xx"] > 0:
            failures.append(f"login/{key}")
    if results["gatewayOverhead"]["gateway"]["non2xx"] or results["gatewayOverhead"]["direct"]["non2xx"]:
        failures.append("gatewayOverhead")
    missed = [k for k, v in results.items() if isinstance(v, dict) and v.get("met") is False]
    log(f"done in {results['elapsedSeconds']} s: bench/results/results.md, results.png")
    if missed:
        log(f"targets missed: {', '.join(missed)} (see README, Benchmarks)")
    if failures:
        log(f"FAILED: non-2xx responses in {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

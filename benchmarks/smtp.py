"""How fast the sender hands prepared messages to an SMTP server, next to postfix's
own client on the same server in the same run.

    .venv/bin/python benchmarks/smtp.py [--messages 5000] [--size 27000] [--rounds 3]

Sends ``--messages`` prepared messages of ``--size`` bytes into postfix's
``smtp-sink`` with ``SmtpSender.send_many`` (the pool) at 1, 2, 4 and 8
connections, with one ``SmtpConnection`` sending one message at a time (notices,
the CLI), with aiosmtplib's own ``sendmail`` one at a time (what a batch did
before the pool), and has ``smtp-source`` send as many messages of that
size with 1 and 2 sessions (``-d``: each session reused, as the pool's are). The
runs alternate, ``--rounds`` times, and the median of each is printed in msg/s
with its ratio to ``smtp-source``'s; on a machine shared with other work only
the ratios mean much. CPU seconds per 1,000 messages (the sender's process, or
smtp-source's) say what a message costs the client, whatever else the machine
is doing.

Debian's ``postfix`` package brings ``smtp-sink`` and ``smtp-source``; when they
are missing, this installs it (as root; the postfix daemon is never started).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiosmtplib

from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import SendError
from digest.mail.sink import free_port
from digest.mail.smtp import SmtpConfig, SmtpSender
from digest.processes import wait_for

TOOLS = ("smtp-sink", "smtp-source")
SBIN = Path("/usr/sbin")


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(SBIN))
    if found is None:
        raise SystemExit(f"{name} not found (Debian package postfix)")
    return found


def ensure_postfix_tools() -> None:
    if all(shutil.which(t) or (SBIN / t).exists() for t in TOOLS):
        return
    if os.geteuid() != 0:
        raise SystemExit("smtp-sink/smtp-source missing: apt-get install postfix (as root)")
    print("installing Debian's postfix for smtp-sink and smtp-source (daemon not started)")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postfix"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def prepared(count: int, size: int) -> list[OutgoingMessage]:
    """``count`` distinct messages of about ``size`` bytes, CRLF, as composing
    hands them over."""
    line = b"A trending paper, its authors, why it was picked and its links.....\r\n"
    body = line * (size // len(line))
    messages = []
    for n in range(count):
        recipient = f"reader{n}@example.org"
        message_id = f"<digest-{n}@example.org>"
        headers = (
            f"From: digest <digest@example.org>\r\nTo: {recipient}\r\n"
            f"Subject: Your papers\r\nMessage-ID: {message_id}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        messages.append(
            OutgoingMessage(
                sender="digest@example.org",
                recipient=recipient,
                message_id=message_id,
                data=headers + body,
            )
        )
    return messages


class Sink:
    def __init__(self) -> None:
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [tool("smtp-sink"), *user, f"127.0.0.1:{self.port}", "256"],
            stdout=subprocess.DEVNULL,
        )
        if not wait_for(self._listening, timeout=10, interval=0.05):
            self.process.kill()
            raise SystemExit("smtp-sink did not start")

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def cpu_seconds() -> float:
    """This process's CPU time and its children's (smtp-source, not smtp-sink,
    which is still running)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def timed(run: Callable[[], None]) -> tuple[float, float]:
    cpu, start = cpu_seconds(), time.perf_counter()
    run()
    return time.perf_counter() - start, cpu_seconds() - cpu


def pool_run(url: str, messages: list[OutgoingMessage], connections: int) -> Callable[[], None]:
    sender = SmtpSender(SmtpConfig.from_url(url, connections=connections))

    def run() -> None:
        errors: list[SendError] = []

        def record(message: OutgoingMessage, error: SendError | None) -> None:
            if error is not None:
                errors.append(error)

        sender.send_many(messages, record)
        if errors:
            raise SystemExit(f"{len(errors)} refused, e.g. {errors[0]}")

    return run


def one_by_one_run(url: str, messages: list[OutgoingMessage]) -> Callable[[], None]:
    sender = SmtpSender(SmtpConfig.from_url(url))

    def run() -> None:
        with sender.connection() as connection:
            for message in messages:
                connection.send(message)

    return run


def sendmail_run(port: int, messages: list[OutgoingMessage]) -> Callable[[], None]:
    """What a batch did before this sender: aiosmtplib's sendmail, one at a time."""

    async def send() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for message in messages:
            await client.sendmail(message.sender, [message.recipient], message.data)
        await client.quit()

    return lambda: asyncio.run(send())


def smtp_source_run(port: int, count: int, size: int, sessions: int) -> Callable[[], None]:
    command = [tool("smtp-source"), "-d", "-s", str(sessions), "-m", str(count)]
    command += ["-l", str(size), f"127.0.0.1:{port}"]

    def run() -> None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=27000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,2,4,8")
    args = parser.parse_args()
    ensure_postfix_tools()
    messages = prepared(args.messages, args.size)
    sink = Sink()
    url = f"smtp://127.0.0.1:{sink.port}"
    runs: dict[str, Callable[[], None]] = {
        f"smtp-source, {s} session{'s' * (s > 1)}": smtp_source_run(
            sink.port, args.messages, args.size, s
        )
        for s in (1, 2)
    }
    runs["aiosmtplib sendmail (before)"] = sendmail_run(sink.port, messages)
    runs["SmtpConnection, one at a time"] = one_by_one_run(url, messages)
    for n in (int(c) for c in args.connections.split(",")):
        runs[f"send_many, {n} connection{'s' * (n > 1)}"] = pool_run(url, messages, n)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    size = len(messages[0].data)
    print(f"{args.messages} messages of {size:,} bytes into smtp-sink, {args.rounds} rounds")
    try:
        for round_ in range(1, args.rounds + 1):
            for name, run in runs.items():
                elapsed, used = timed(run)
                rates[name].append(args.messages / elapsed)
                cpu[name].append(used / args.messages * 1000)
            print(f"round {round_}: " + ", ".join(f"{rates[n][-1]:,.0f}" for n in runs))
    finally:
        sink.stop()
    median = {name: statistics.median(values) for name, values in rates.items()}
    sources = {s: median[f"smtp-source, {s} session{'s' * (s > 1)}"] for s in (1, 2)}
    print()
    print(f"{'':32} {'msg/s':>8} {'vs source 1':>12} {'vs source 2':>12} {'CPU s/1k':>9}")
    for name in runs:
        cpu_cost = f"{statistics.median(cpu[name]):9.2f}"
        print(
            f"{name:32} {median[name]:8,.0f} {median[name] / sources[1]:12.0%} "
            f"{median[name] / sources[2]:12.0%} {cpu_cost}"
        )


if __name__ == "__main__":
    main()

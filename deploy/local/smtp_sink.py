#!/usr/bin/env python3
"""The local stack's SMTP server: accepts every message and keeps it as a file.

auth sends its mail (verification, password reset) here by default (SMTP_URL
smtp://127.0.0.1:2525); deploy/local/deps starts it. Nothing is relayed anywhere.

Each accepted message is written once per recipient, as JSON, to
    <dir>/<recipient, lower-cased>/<nanoseconds>-<n>.json
with the envelope (mail_from, rcpt_tos), the headers tests look at (from, to, subject),
the decoded text/plain body (`text`) and the raw message (`raw`). A file is written
under a temporary name and renamed, so a reader never sees half of one. Tests find a
user's mail in the recipient's directory (every test uses its own addresses, so tests
running at once do not see each other's mail).

Files older than --retention-hours are removed at start and every hour.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import re
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP

UNSAFE = re.compile(r"[^a-z0-9@._+-]")


def mailbox_dir(root: Path, recipient: str) -> Path:
    """The recipient's directory: lower-cased, anything unusual replaced by `_`."""
    name = UNSAFE.sub("_", recipient.strip().lower()) or "_"
    if name in (".", ".."):
        name = "_"
    return root / name


class Sink:
    def __init__(self, root: Path):
        self.root = root
        self.counter = 0

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "subject": str(message.get("Subject", "")),
            "text": body.get_content() if body is not None else "",
            "raw": raw.decode("utf-8", "replace"),
            "received_at": time.time(),
        }
        data = json.dumps(record).encode()
        for recipient in envelope.rcpt_tos:
            directory = mailbox_dir(self.root, recipient)
            directory.mkdir(parents=True, exist_ok=True)
            self.counter += 1
            name = f"{time.time_ns()}-{self.counter}"
            tmp = directory / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, directory / f"{name}.json")
        logging.info("accepted mail for %s: %s", ", ".join(envelope.rcpt_tos), record["subject"])
        return "250 Message accepted for delivery"


def prune(root: Path, retention_secs: float) -> None:
    cutoff = time.time() - retention_secs
    for directory in root.iterdir() if root.exists() else []:
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass
        try:
            directory.rmdir()  # only when empty
        except OSError:
            pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--retention-hours", type=float, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: every SMTP command
    args.dir.mkdir(parents=True, exist_ok=True)
    sink = Sink(args.dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="kino-smtp-sink", enable_SMTPUTF8=True),
        host=args.host,
        port=args.port,
    )
    logging.info("SMTP sink on %s:%d, mail in %s", args.host, args.port, args.dir)
    async with server:
        while True:
            prune(args.dir, args.retention_hours * 3600)
            await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main())

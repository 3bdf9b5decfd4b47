"""A real SMTP server (aiosmtpd) on loopback that records what it receives.

`mode` makes it accept, refuse every message, or hold messages until `release()`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.server import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        return self.message.get_content()


@dataclass
class RecordingHandler:
    mode: str = "accept"
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    gate: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd hook
        if self.mode == "refuse":
            self.refused += 1
            return "554 5.0.0 Transaction failed"
        if self.mode == "hold":
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self.handler.gate.set()
        self._controller.stop()

    def set_mode(self, mode: str) -> None:
        self.handler.mode = mode
        if mode == "hold":
            self.handler.gate.clear()

    def release(self) -> None:
        self.handler.gate.set()

    def wait_for(self, recipient: str, timeout: float = 30, containing: str = "") -> Received:
        """The first message delivered to `recipient` (whose text holds `containing`), waiting
        for the email worker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for received in self.handler.received:
                if recipient in received.recipients and containing in received.text:
                    return received
            time.sleep(0.1)
        raise AssertionError(f"no email for {recipient} within {timeout}s")

    def messages_for(self, recipient: str) -> list[Received]:
        return [r for r in self.handler.received if recipient in r.recipients]

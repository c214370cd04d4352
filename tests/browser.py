"""Headless Chromium driven over the DevTools protocol, for tests that must see a page the way a
reader does: after its script ran, with every request the page attempted on record.

"No network request" is observed, not assumed: every ``Network.requestWillBeSent`` of the page's
target is recorded, and so is every Content-Security-Policy refusal the browser logs (a request a
CSP stops before it starts, such as a ``fetch``, never reaches the Network domain). The browser
also runs behind a proxy that does not exist and resolves no host name, so a request that slips
through fails fast instead of leaving the machine.

Also a command, to take the screenshot in docs/ (a 64-colour PNG, small enough to commit):
    python tests/browser.py PAGE.html[#user=ID] OUT.png [WIDTH]
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

import aiohttp

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--mute-audio",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--force-device-scale-factor=1", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-port=0",
]


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise RuntimeError("chromium is not installed: `make test` installs Debian's chromium package (apt-get install chromium)")
    return binary


class Page:
    """One loaded page: run script in it, read what it requested, take a screenshot."""

    def __init__(self, browser: "Chromium", ws: aiohttp.ClientWebSocketResponse, url: str) -> None:
        self._browser, self._ws, self.url = browser, ws, url
        self._next_id = 0
        self.requests: list[str] = []        # URLs the page asked for, besides itself and data: URLs
        self.csp_refusals: list[str] = []    # requests the page's CSP stopped (an attempt all the same)
        self.script_errors: list[str] = []

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        reply = self._browser.run(self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True))
        if "exceptionDetails" in reply:
            raise AssertionError(f"script failed in the page: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def type(self, text: str, then_enter: bool = True) -> None:
        """Keyboard input into the focused element, as a reader types it."""
        async def typing() -> None:
            await self._call("Input.insertText", text=text)
            if then_enter:
                for kind in ("keyDown", "keyUp"):
                    await self._call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13)
        self._browser.run(typing())

    def screenshot(self, path: Path, width: int = 1200) -> None:
        async def capture() -> bytes:
            height = await self._call("Runtime.evaluate", expression="document.documentElement.scrollHeight", returnByValue=True)
            await self._call("Emulation.setDeviceMetricsOverride", width=width, height=int(height["result"]["value"]),
                             deviceScaleFactor=1, mobile=False)
            shot = await self._call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            return base64.b64decode(shot["data"])
        Path(path).write_bytes(self._browser.run(capture()))

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        call_id = self._next_id
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await self._ws.receive_json(timeout=30)
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]
            self._observe(message)

    def _observe(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if url != self.url.split("#")[0] and not url.startswith("data:"):
                self.requests.append(url)
        elif method == "Log.entryAdded" and "Content Security Policy" in params["entry"]["text"]:
            self.csp_refusals.append(params["entry"]["text"])
        elif method == "Runtime.exceptionThrown":
            self.script_errors.append(str(params["exceptionDetails"]))

    async def _load(self) -> None:
        for domain in ("Network", "Page", "Runtime", "Log"):
            await self._call(f"{domain}.enable")
        await self._call("Page.navigate", url=self.url)
        while True:  # the page's inline script has run by its load event
            message = await self._ws.receive_json(timeout=30)
            self._observe(message)
            if message.get("method") == "Page.loadEventFired":
                return


class Chromium:
    """``with Chromium() as browser: page = browser.open(url)``; one page at a time."""

    def __init__(self, width: int = 1200, height: int = 1600) -> None:
        self.size = (width, height)
        self._loop = asyncio.new_event_loop()

    def run(self, coroutine):
        return self._loop.run_until_complete(coroutine)

    def __enter__(self) -> "Chromium":
        self._profile = tempfile.TemporaryDirectory(prefix="llmaug-chromium-")
        self._process = subprocess.Popen(
            [chromium_binary(), *FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # a process group of its own: its helpers are stopped with it
        )
        for line in self._process.stderr:
            found = re.search(r"DevTools listening on ws://([^/]+)/", line)
            if found:
                self._address = found.group(1)
                break
        else:
            raise RuntimeError(f"chromium exited ({self._process.wait()}) before its DevTools endpoint was up")
        # Keep reading chromium's stderr so a chatty browser never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self._process.stderr], daemon=True).start()
        self._session = self.run(_session())
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None
        return self

    def open(self, url: str) -> Page:
        async def connect() -> Page:
            if self._ws is not None:
                await self._ws.close()
            async with self._session.get(f"http://{self._address}/json/list") as reply:
                target = next(t for t in await reply.json() if t["type"] == "page")
            self._ws = await self._session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(self, self._ws, url)
            await page._load()
            return page
        return self.run(connect())

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self._ws is not None:
                await self._ws.close()
            await self._session.close()
        self.run(close())
        self._loop.close()
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        _stop_helpers(self._process.pid)
        self._profile.cleanup()


def _stop_helpers(group: int, seconds: float = 10.0) -> None:
    """Chromium's helper processes, which can outlive it for a moment and go on writing into the
    profile (its removal then failed with "Directory not empty"): killed, and waited for."""
    deadline = time.monotonic() + seconds
    try:
        os.killpg(group, signal.SIGKILL)
        while time.monotonic() < deadline:
            os.killpg(group, 0)  # ProcessLookupError once the group is gone
            time.sleep(0.05)
    except ProcessLookupError:
        pass


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()  # made inside the loop that will use it


if __name__ == "__main__":
    page_path, out = sys.argv[1], Path(sys.argv[2])
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 1200
    file_part, _, fragment = page_path.partition("#")
    with Chromium(width=width) as browser:
        page = browser.open(Path(file_part).resolve().as_uri() + (f"#{fragment}" if fragment else ""))
        page.screenshot(out, width)
    from PIL import Image

    Image.open(out).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")

"""An OpenAI-compatible chat endpoint the operator runs (vLLM, llama.cpp, TGI, a hosted API), over the standard library.

Only ``POST {endpoint}/chat/completions`` is used, through ``urllib.request`` (no
new dependency), with a timeout, a bounded number of requests in flight and
retries with exponential backoff on 429 and 5xx answers (``Retry-After`` is
honoured up to :data:`MAX_BACKOFF_S`).

Offline by default
    An endpoint on this machine (``localhost`` or a loopback address such as
    ``127.0.0.1`` or ``::1``) may be used offline: nothing leaves the machine,
    and proxies from the environment are bypassed so it stays so. Any other host
    needs the project's online switch (``--online``, ``SYNTHSCOPE_ONLINE=1`` or
    :func:`synthscope.online`), checked before every batch of requests. Redirects are
    refused, so a loopback server cannot send a request elsewhere.

The API key
    ``api_key_env`` names an environment variable; its value is read when a
    request is made and sent as ``Authorization: Bearer …``. The key is never an
    attribute of :class:`ChatEndpoint`, so it cannot reach a manifest, a cache or
    an error message; a URL with a user name or password in it is refused for the
    same reason.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from synthscope.compute.models import ModelError
from synthscope.core import hub

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
BACKOFF_S = 0.5  # the first retry waits about this long, each next one twice as long
MAX_BACKOFF_S = 30.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Progress = Callable[[int, int, str], None]


class EndpointError(ModelError):
    """The endpoint cannot be used or did not answer; the message says why in one sentence.

    A :class:`~synthscope.compute.models.ModelError`: like a model that cannot be loaded,
    it is something the user fixes (the command line prints it as one line).
    """


def check_url(url: str) -> str:
    """The endpoint's base URL without a trailing slash; raises ``ValueError`` for one that cannot be used."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1; got {url!r}")
    if parsed.username or parsed.password:
        raise ValueError("endpoint must not carry a user name or password; put the key in the environment variable "
                         "named by api_key_env")
    if parsed.query or parsed.fragment:
        raise ValueError(f"endpoint must be the API's base URL (such as http://127.0.0.1:8000/v1), without a query "
                         f"or fragment; got {parsed.scheme}://{parsed.netloc}{parsed.path}?…")
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def check_env_name(name: str) -> str:
    """``name`` if it can name an environment variable; the message never repeats it (it may be the key itself)."""
    if not _ENV_NAME.match(name):
        raise ValueError("api_key_env must be the name of an environment variable (letters, digits and _), "
                         "not the key itself")
    return name


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine: ``localhost`` or a loopback IP literal (no DNS lookup)."""
    host = (urllib.parse.urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise EndpointError(f"the endpoint {req.full_url} redirected ({code}) to {newurl}; set endpoint to the URL "
                            "that answers, redirects are not followed")


def _server_message(body: bytes) -> str:
    """The error a server put in its body (OpenAI's ``{"error": {"message": …}}`` or plain text), on one line."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str):
            text = message
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:200] + "…"


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's ``Retry-After`` or exponential backoff."""
    if value:
        try:
            return min(max(float(value), 0.0), MAX_BACKOFF_S)
        except ValueError:
            pass  # an HTTP date: fall back to backoff
    return min(BACKOFF_S * 2**attempt * (1 + 0.25 * random.random()), MAX_BACKOFF_S)


@dataclass(frozen=True)
class ChatEndpoint:
    """An OpenAI-compatible server's ``/chat/completions`` for one served model."""

    url: str
    """The API's base URL, e.g. ``http://127.0.0.1:8000/v1``."""
    model: str
    """The model name the server serves (what ``GET {url}/models`` lists)."""
    api_key_env: str | None = None
    """The environment variable holding the key (its name, never the key)."""
    timeout_s: float = 120.0
    concurrency: int = 4
    retries: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", check_url(self.url))
        if self.api_key_env is not None:
            check_env_name(self.api_key_env)
        if not self.model:
            raise ValueError("the endpoint needs the name of the model it serves")
        if self.timeout_s <= 0 or self.concurrency < 1 or self.retries < 0:
            raise ValueError("timeout_s must be > 0, concurrency >= 1 and retries >= 0")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.url)

    def check_allowed(self) -> None:
        """Raise :class:`EndpointError` when the endpoint is off this machine and synthscope is offline."""
        if not self.loopback and not hub.is_online():
            host = urllib.parse.urlsplit(self.url).hostname
            raise EndpointError(f"the judge endpoint {self.url} is on {host}, not this machine, and synthscope is "
                                "offline: run with --online (or SYNTHSCOPE_ONLINE=1, or synthscope.online()) to "
                                "let it be reached, or use a server on 127.0.0.1")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env is not None:
            key = os.environ.get(self.api_key_env, "")
            if not key:
                raise EndpointError(f"api_key_env names {self.api_key_env}, but that environment variable is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _opener(self) -> urllib.request.OpenerDirector:
        proxies = urllib.request.ProxyHandler({}) if self.loopback else urllib.request.ProxyHandler()
        return urllib.request.build_opener(proxies, _NoRedirect())

    def complete(self, messages: Sequence[dict[str, str]], max_tokens: int, json_mode: bool = True,
                 opener: urllib.request.OpenerDirector | None = None) -> str:
        """The assistant's reply to one conversation (greedy: temperature 0); ``""`` when it has no text."""
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "temperature": 0,
                                "max_tokens": max_tokens}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        request = urllib.request.Request(f"{self.url}/chat/completions", data=json.dumps(body).encode("utf-8"),
                                         headers=self._headers(), method="POST")
        opener = opener or self._opener()
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                with opener.open(request, timeout=self.timeout_s) as response:
                    raw = response.read()
                break
            except urllib.error.HTTPError as exc:
                message = _server_message(exc.read() or b"")
                if exc.code in RETRY_STATUS and not last:
                    time.sleep(_retry_after(exc.headers.get("Retry-After"), attempt))
                    continue
                tried = f" after {self.retries} retries" if exc.code in RETRY_STATUS and self.retries else ""
                raise EndpointError(f"the judge endpoint {self.url} answered {exc.code} {exc.reason}{tried}"
                                    f"{': ' + message if message else ''}") from None
            except TimeoutError:
                if not last:
                    time.sleep(_retry_after(None, attempt))
                    continue
                raise EndpointError(f"the judge endpoint {self.url} did not answer within {self.timeout_s:g} s "
                                    f"({self.retries} retries); raise timeout_s or lower concurrency") from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError) and not last:
                    time.sleep(_retry_after(None, attempt))
                    continue
                raise EndpointError(f"could not reach the judge endpoint {self.url} ({exc.reason}); is the server "
                                    "running there?") from None
            except (ConnectionError, OSError) as exc:
                raise EndpointError(f"could not reach the judge endpoint {self.url} ({exc}); is the server "
                                    "running there?") from None
        try:
            content = json.loads(raw)["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise EndpointError(f"the reply of {self.url}/chat/completions is not an OpenAI chat completion "
                                "(no choices[0].message); is endpoint the API's base URL, such as "
                                "http://127.0.0.1:8000/v1?") from None
        return content if isinstance(content, str) else ""

    def complete_all(self, conversations: Sequence[Sequence[dict[str, str]]], max_tokens: int,
                     json_mode: bool = True, progress: Progress | None = None) -> list[str]:
        """Every conversation's reply, in order, with at most ``concurrency`` requests in flight.

        The first failure stops the requests not yet sent and is raised.
        """
        self.check_allowed()
        opener = self._opener()
        replies: list[str] = [""] * len(conversations)
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, max(len(conversations), 1)),
                                  thread_name_prefix="synthscope-endpoint")
        failed = False
        try:
            futures: dict[Future[str], int] = {
                pool.submit(self.complete, messages, max_tokens, json_mode, opener): i
                for i, messages in enumerate(conversations)}
            pending, done = set(futures), 0
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    error = future.exception()
                    if error is not None:
                        failed = True
                        raise error
                    replies[futures[future]] = future.result()
                    done += 1
                if progress:
                    progress(done, len(conversations), "asking the judge endpoint")
        finally:
            # After a failure: drop what was not sent, do not wait for what is in flight (it may be retrying).
            pool.shutdown(wait=not failed, cancel_futures=failed)
        return replies

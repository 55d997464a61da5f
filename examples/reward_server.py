#!/usr/bin/env python3
"""A reference reward service for --reward_url, standard library only.

POST any path with {"prompt": str, "completions": [str, ...], "answer": str}
and get back {"rewards": [float, ...]}: 1.0 for a completion whose last
number equals the answer, else 0.0. Replace score() with a reward model or
a code sandbox; keep the wire format.

  python3 examples/reward_server.py --port=8090

With --port=0 the kernel picks a port; the first line on stdout is
{"event": "ready", "port": N} once it listens.
"""

import argparse
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY_BYTES = 8 << 20
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text):
    found = NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def score(prompt, completion, answer):
    del prompt  # This scorer only needs the answer.
    got = last_number(completion)
    try:
        want = float(answer.replace(",", ""))
    except ValueError:
        return 1.0 if completion.strip().lower() == answer.strip().lower() else 0.0
    return 1.0 if got is not None and abs(got - want) < 1e-9 else 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 (the name http.server calls)
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            return self._reply(413 if length > 0 else 411,
                               {"error": "a body of known size up to 8 MiB"})
        try:
            request = json.loads(self.rfile.read(length))
            prompt = request["prompt"]
            completions = request["completions"]
            answer = request.get("answer", "")
            if not (isinstance(prompt, str) and isinstance(answer, str) and
                    isinstance(completions, list) and
                    all(isinstance(c, str) for c in completions)):
                raise TypeError("prompt, answer: strings; completions: list of strings")
        except (ValueError, KeyError, TypeError) as error:
            return self._reply(400, {"error": f"bad request: {error}"})
        rewards = [score(prompt, c, answer) for c in completions]
        return self._reply(200, {"rewards": rewards})

    def log_message(self, format, *args):  # noqa: A002 (http.server's name)
        pass  # Quiet: the trainer's log is the one people read.


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(json.dumps({"event": "ready", "port": server.server_address[1]}),
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

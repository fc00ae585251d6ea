#!/usr/bin/env python3
"""A real HTTP receiver for the streaming tests: a webhook or Splunk-HEC-shaped endpoint.

    receiver.py DIR [PORT]

Listens on 127.0.0.1:PORT (0: a free one) and writes the port to DIR/port. Each POST it
accepts is appended to DIR/accepted.ndjson as {"path", "headers", "body"} and answered 200
({"text":"Success","code":0}, as Splunk HEC does). While the file DIR/down exists it answers 503
and appends the request to DIR/refused.ndjson instead. With RECEIVER_COUNT_ONLY=1 (benchmarks) it
appends only the number of events in each accepted body to DIR/counts; with RECEIVER_IDS=1, also
a line "TENANT ID ID ..." per accepted webhook batch to DIR/ids.
"""
import http.server
import json
import os
import socket
import sys

directory = sys.argv[1]
count_only = os.environ.get("RECEIVER_COUNT_ONLY") == "1"
ids_too = os.environ.get("RECEIVER_IDS") == "1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # The answer's header and body go out as two writes: without this, Nagle holds the body
        # until the client's delayed ACK (40 ms), which would make the receiver the bottleneck.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        down = os.path.exists(os.path.join(directory, "down"))
        if count_only and not down:
            with open(os.path.join(directory, "counts"), "a") as log:
                log.write("%d\n" % body.count('{"id":'))
            if ids_too:
                batch = json.loads(body)
                with open(os.path.join(directory, "ids"), "a") as log:
                    log.write(" ".join([batch["tenant_id"]] + [e["id"] for e in batch["events"]]) + "\n")
            return self.answer(200)
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with open(os.path.join(directory, "refused.ndjson" if down else "accepted.ndjson"), "a") as log:
            log.write(json.dumps(record) + "\n")
        self.answer(503 if down else 200)

    def answer(self, status):
        answer = b'{"text":"Success","code":0}' if status == 200 else b'{"text":"Service Unavailable","code":9}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
with open(os.path.join(directory, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(directory, "port.tmp"), os.path.join(directory, "port"))
server.serve_forever()

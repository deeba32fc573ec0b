#!/usr/bin/env python3
"""faultproxy.py: an HTTP/1.1 proxy of our own that sits between cairn and a
test server (s3rver, rclone serve restic) on 127.0.0.1 and injects faults.

Requests and responses are relayed byte for byte (headers untouched, so AWS
SigV4 signatures still verify upstream); each client connection gets its own
upstream connection.  Faults, each counted in the log:
  --drop-every N      every Nth accepted connection is reset: odd-numbered
                      drops before the request reaches the server, even ones
                      after the server answered: half of the answer's body
                      is relayed, or nothing when it has none (the server
                      did the work, the client saw a broken response)
  --fail-every N      every Nth request is answered 503 SlowDown (S3's XML
                      error body) without reaching the server
  --stall-request K   the Kth request (counting only those whose "METHOD
  --stall-match RX    PATH" matches --stall-match) is relayed, but its answer
  --stall-seconds S   is held for S seconds, then the connection is closed
                      unanswered
  --refuse-after N    after N requests (counting only those matching
  --refuse-match RX   --refuse-match) every request and connection is reset
                      at once: a server that went away
  --inject M:REGEX:STATUS:CODE   requests with method M whose path matches
                      REGEX are answered STATUS with S3 error code CODE
  --conn-max-requests N   close a connection after N requests (as servers
                      do), so that new connections keep coming
The listening port is written to --port-file once the proxy accepts
connections; --port 0 picks a free one.  Every fault is logged as one line
("drop ...", "fail ...", "stall ...", "refuse ...", "inject ...") to --log.

Threads: one per client connection; the counters and the log are shared
under one lock.
"""
import argparse
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time

LOCK = threading.Lock()
STATE = {"conns": 0, "requests": 0, "stall_seen": 0, "refuse_seen": 0, "drops": 0,
         "stalled": False}
ARGS = None
LOG = None


def log(line):
    with LOCK:
        LOG.write("%.3f %s\n" % (time.time(), line))
        LOG.flush()


def reset(sock):
    """Close with a TCP RST instead of an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


class Closed(Exception):
    pass


def read_head(f):
    """Read a request or response head; None at a clean end of stream."""
    lines = []
    size = 0
    while True:
        line = f.readline(65537)
        if not line:
            if not lines:
                return None
            raise Closed("end of stream inside a head")
        size += len(line)
        if size > 262144:
            raise Closed("head too large")
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerate stray blank lines between messages
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def parse_head(head):
    text = head.decode("latin-1")
    first, _, rest = text.partition("\r\n")
    headers = {}
    for line in rest.split("\r\n"):
        if ":" in line:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
    return first, headers


def copy_exact(src, dst, n):
    while n > 0:
        chunk = src.read(min(n, 1 << 16))
        if not chunk:
            raise Closed("end of stream inside a body")
        if dst is not None:
            dst.sendall(chunk)
        n -= len(chunk)


def copy_chunked(src, dst):
    """Relay a chunked body (with trailers) verbatim."""
    while True:
        line = src.readline(4096)
        if not line:
            raise Closed("end of stream inside a chunked body")
        if dst is not None:
            dst.sendall(line)
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while True:
                t = src.readline(4096)
                if not t:
                    raise Closed("end of stream inside trailers")
                if dst is not None:
                    dst.sendall(t)
                if t in (b"\r\n", b"\n"):
                    return
        copy_exact(src, dst, size + 2)


def body_kind(headers):
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return ("chunked", 0)
    if "content-length" in headers:
        return ("length", int(headers["content-length"]))
    return ("none", 0)


def relay_body(kind, src, dst):
    if kind[0] == "chunked":
        copy_chunked(src, dst)
    elif kind[0] == "length":
        copy_exact(src, dst, kind[1])


def error_response(status, code, message, resource):
    reasons = {403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
               503: "Service Unavailable"}
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
            "<Message>%s</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId>"
            "</Error>" % (code, message, resource)).encode()
    head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (status, reasons.get(status, "Error"), len(body)))
    return head.encode() + body


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        client = self.request
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with LOCK:
            STATE["conns"] += 1
            conn_no = STATE["conns"]
            refused = ARGS.refuse_after and STATE["refuse_seen"] >= ARGS.refuse_after
            drop = bool(ARGS.drop_every) and conn_no % ARGS.drop_every == 0
            if drop:
                STATE["drops"] += 1
                drop_late = STATE["drops"] % 2 == 0
        if refused:
            log("refuse connection %d" % conn_no)
            reset(client)
            return
        cf = client.makefile("rb")
        up = None
        uf = None
        served = 0
        try:
            while True:
                head = read_head(cf)
                if head is None:
                    return
                first, headers = parse_head(head)
                parts = first.split(" ")
                method, path = parts[0], parts[1] if len(parts) > 1 else "/"
                line = method + " " + path
                with LOCK:
                    STATE["requests"] += 1
                    req_no = STATE["requests"]
                    refused = ARGS.refuse_after and STATE["refuse_seen"] >= ARGS.refuse_after
                    if ARGS.refuse_after and ARGS.refuse_match.search(line):
                        STATE["refuse_seen"] += 1
                    fail = bool(ARGS.fail_every) and req_no % ARGS.fail_every == 0
                    stall = False
                    if (not STATE["stalled"] and ARGS.stall_request
                            and ARGS.stall_match.search(line)):
                        STATE["stall_seen"] += 1
                        if STATE["stall_seen"] == ARGS.stall_request:
                            STATE["stalled"] = True
                            stall = True
                what = "%s %s (connection %d, request %d)" % (method, path, conn_no, req_no)
                expect = headers.get("expect", "").lower() == "100-continue"
                kind = body_kind(headers)
                if refused:
                    log("refuse " + what)
                    reset(client)
                    return
                if drop and not drop_late:
                    log("drop early " + what)
                    reset(client)
                    return
                injected = None
                for m, rx, status, code in ARGS.inject:
                    if m == method and rx.search(path):
                        injected = (status, code)
                        break
                if injected or (fail and not stall and not drop):
                    status, code = injected or (503, "SlowDown")
                    if not expect:
                        relay_body(kind, cf, None)
                    log(("inject %d %s " % (status, code) if injected else "fail 503 ") + what)
                    client.sendall(error_response(status, code, "injected by faultproxy", path))
                    return  # Connection: close
                # forward
                if up is None:
                    up = socket.create_connection((ARGS.upstream_host, ARGS.upstream_port))
                    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    uf = up.makefile("rb")
                up.sendall(head)
                resp_head = None
                if expect:
                    resp_head = read_head(uf)
                    if resp_head is None:
                        raise Closed("upstream closed")
                    if resp_head.split(b" ", 2)[1:2] == [b"100"]:
                        client.sendall(resp_head)
                        resp_head = None
                        relay_body(kind, cf, up)
                    # else: a final answer before the body; the client will not send it
                else:
                    relay_body(kind, cf, up)
                while resp_head is None or resp_head.split(b" ", 2)[1:2] == [b"100"]:
                    resp_head = read_head(uf)
                    if resp_head is None:
                        raise Closed("upstream closed")
                rfirst, rheaders = parse_head(resp_head)
                status = int(rfirst.split(" ")[1])
                if method == "HEAD" or status in (204, 304):
                    rkind = ("length", 0)
                else:
                    rkind = body_kind(rheaders)
                    if rkind[0] == "none":
                        rkind = ("eof", 0)
                if stall:
                    # read the answer, then keep it back longer than the client waits
                    if rkind[0] != "eof":
                        relay_body(rkind, uf, None)
                    log("stall %.0fs %s" % (ARGS.stall_seconds, what))
                    time.sleep(ARGS.stall_seconds)
                    log("stall over " + what)
                    reset(client)
                    return
                if drop:
                    # half of the answer when it has a body, else none of it
                    if rkind[0] == "length" and rkind[1] > 1:
                        client.sendall(resp_head)
                        copy_exact(uf, client, rkind[1] // 2)
                    log("drop late " + what)
                    reset(client)
                    return
                client.sendall(resp_head)
                if rkind[0] == "eof":
                    while True:
                        chunk = uf.read1(1 << 16)
                        if not chunk:
                            return
                        client.sendall(chunk)
                relay_body(rkind, uf, client)
                served += 1
                if ("close" in headers.get("connection", "").lower()
                        or "close" in rheaders.get("connection", "").lower()):
                    return
                if ARGS.conn_max_requests and served >= ARGS.conn_max_requests:
                    return
        except (Closed, OSError, ValueError, IndexError):
            return
        finally:
            for s in (up, client):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def parse_inject(spec):
    m, rx, status, code = spec.split(":", 3)
    return (m, re.compile(rx), int(status), code)


def main():
    global ARGS, LOG
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--upstream", required=True, help="HOST:PORT")
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--stall-request", type=int, default=0)
    p.add_argument("--stall-match", default="", type=re.compile)
    p.add_argument("--stall-seconds", type=float, default=30)
    p.add_argument("--refuse-after", type=int, default=0)
    p.add_argument("--refuse-match", default="", type=re.compile)
    p.add_argument("--conn-max-requests", type=int, default=0)
    p.add_argument("--inject", action="append", default=[], type=parse_inject)
    p.add_argument("--log", default="-")
    ARGS = p.parse_args()
    host, _, port = ARGS.upstream.rpartition(":")
    ARGS.upstream_host, ARGS.upstream_port = host or "127.0.0.1", int(port)
    LOG = sys.stdout if ARGS.log == "-" else open(ARGS.log, "a")
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    log("listening on 127.0.0.1:%d, upstream %s" % (srv.server_address[1], ARGS.upstream))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

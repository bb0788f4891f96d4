#!/usr/bin/env python3
"""Independent conformance check of a peerdex index server, written from PROTOCOL.md alone.

Registers a fresh name (R with an empty addr), searches it (S), lists the index (O sequence),
deregisters it (T) and searches again (E 3), checking every reply byte for byte against the
spec. Prints one line per step and exits 0 when every step passed, 1 otherwise.

    python3 scripts/protocol-check.py --index 127.0.0.1:9000

Standard library only, Python 3.8+.
"""
import argparse
import base64
import hashlib
import os
import socket
import sys

PDU_SIZE = 100
DATA_MAX = PDU_SIZE - 1


class CheckFailed(Exception):
    pass


def pdu(type_letter, data):
    """type letter + UTF-8 data + NUL padding, exactly 100 bytes."""
    raw = type_letter.encode("ascii") + data.encode("utf-8")
    if len(raw) > PDU_SIZE:
        raise ValueError("data too long for a PDU: %r" % data)
    return raw + b"\0" * (PDU_SIZE - len(raw))


def split_pdu(buf):
    """(type, data text) of a reply, after checking its size, padding and encoding."""
    if len(buf) != PDU_SIZE:
        raise CheckFailed("reply is %d bytes, not %d" % (len(buf), PDU_SIZE))
    body = buf[1:]
    end = body.find(b"\0")
    data = body if end == -1 else body[:end]
    if end != -1 and any(body[end:]):
        raise CheckFailed("reply has non-NUL bytes after its data: %r" % buf)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckFailed("reply data is not UTF-8: %r" % buf)
    return chr(buf[0]), text


def parse_host_port(text):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected host:port, got %r" % text)
    return host, int(port)


class IndexClient:
    def __init__(self, host, port, timeout, tries):
        info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        self.sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self.timeout = timeout
        self.sock.settimeout(timeout)
        # A connected socket only hears the index, and tells us the address it sees.
        self.sock.connect(info[4])
        self.tries = tries
        local = self.sock.getsockname()[0]
        self.local_addr = local[7:] if local.lower().startswith("::ffff:") and "." in local else local

    def close(self):
        self.sock.close()

    def drain(self):
        """Discards late replies to an earlier attempt."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            self.sock.settimeout(self.timeout)

    def request(self, buf):
        """Sends buf and returns the first reply, asking again on a timeout."""
        for _ in range(self.tries):
            self.sock.send(buf)
            try:
                return self.sock.recv(65535)
            except socket.timeout:
                continue
        raise CheckFailed("no reply after %d tries" % self.tries)

    def receive(self):
        return self.sock.recv(65535)


def expect_exact(reply, expected, what):
    if reply != expected:
        got_type, got_data = split_pdu(reply) if len(reply) == PDU_SIZE else ("?", repr(reply))
        raise CheckFailed("%s: expected %r, got %s %r" % (what, expected.rstrip(b"\0"), got_type, got_data))


def expect_error(reply, code, what):
    kind, data = split_pdu(reply)
    fields = data.split(";")
    if kind != "E" or fields[0] != str(code):
        raise CheckFailed("%s: expected E %d, got %s %r" % (what, code, kind, data))
    return data


def list_index(client, tries):
    """Sends O and reassembles the sequence; asks again on a timeout or a malformed sequence."""
    problem = "no reply"
    for _ in range(tries):
        client.drain()
        client.sock.send(pdu("O", ""))
        try:
            return read_list(client)
        except socket.timeout:
            problem = "timed out in the middle of the O sequence"
        except CheckFailed as err:
            problem = str(err)
    raise CheckFailed("O: %s (after %d tries)" % (problem, tries))


def read_list(client):
    def next_fields():
        kind, data = split_pdu(client.receive())
        if kind != "O":
            raise CheckFailed("expected an O PDU, got %s %r" % (kind, data))
        return data.split(";")

    first = next_fields()
    if len(first) != 1 or not first[0].isdigit():
        raise CheckFailed("first O PDU should be num_servers, got %r" % ";".join(first))
    servers = []
    for _ in range(int(first[0])):
        header = next_fields()
        if len(header) != 3 or not header[1].isdigit() or not header[2].isdigit():
            raise CheckFailed("bad server header %r" % ";".join(header))
        addr, port, count = header[0], int(header[1]), int(header[2])
        if not 1 <= port <= 65535 or count < 1:
            raise CheckFailed("bad server header %r" % ";".join(header))
        names = []
        for expected_id in range(count):
            packet = next_fields()
            if packet[0] != str(expected_id):
                raise CheckFailed("gap in packet ids: wanted %d, got %r" % (expected_id, packet[0]))
            if not 1 <= len(packet) - 1 <= 4:
                raise CheckFailed("packet holds %d names, not 1..4" % (len(packet) - 1))
            if len(";".join(packet).encode("utf-8")) > DATA_MAX:
                raise CheckFailed("packet data over %d bytes" % DATA_MAX)
            names.extend(packet[1:])
        servers.append((addr, port, names))
    return servers


def main():
    parser = argparse.ArgumentParser(description="Check a peerdex index server against PROTOCOL.md.")
    parser.add_argument("--index", required=True, type=parse_host_port, help="index address, host:port")
    parser.add_argument("--port", type=int, default=9100, help="content server port to register (default 9100)")
    parser.add_argument("--name", default=None, help="filename to register (default: a fresh check-*.txt)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each reply")
    parser.add_argument("--tries", type=int, default=4, help="times to ask before giving up")
    args = parser.parse_args()

    name = args.name or "check-%d-%s.txt" % (os.getpid(), os.urandom(3).hex())
    digest = base64.urlsafe_b64encode(hashlib.sha256(name.encode("utf-8")).digest()).rstrip(b"=").decode("ascii")
    assert len(digest) == 43
    host, port = args.index
    client = IndexClient(host, port, args.timeout, args.tries)
    me = client.local_addr
    holder = "%d;%s;%s;%s" % (args.port, me, name, digest)

    def step_register():
        reply = client.request(pdu("R", "%d;;%s;%s" % (args.port, name, digest)))
        expect_exact(reply, pdu("A", name), "R")
        return "R %d;;%s;<sha256> -> A %s" % (args.port, name, name)

    def step_refresh():
        reply = client.request(pdu("R", "%d;;%s" % (args.port, name)))
        expect_exact(reply, pdu("A", name), "R again (refresh, no sha256)")
        return "R again without sha256 -> A %s (idempotent)" % name

    def step_search():
        reply = client.request(pdu("S", name))
        expect_exact(reply, pdu("S", holder), "S")
        return "S %s -> S %d;%s;%s;<sha256 kept>" % (name, args.port, me, name)

    def step_list():
        servers = list_index(client, args.tries)
        mine = [s for s in servers if s[0] == me and s[1] == args.port]
        if len(mine) != 1 or mine[0][2].count(name) != 1:
            raise CheckFailed("O: %s not listed once under %s;%d (servers: %r)" % (name, me, args.port, [(a, p, len(n)) for a, p, n in servers]))
        return "O -> %d server(s), %s listed under %s;%d" % (len(servers), name, me, args.port)

    def step_bad_request():
        reply = client.request(pdu("R", "0;;%s" % name))
        expect_error(reply, 4, "R with port 0")
        return "R with port 0 -> E 4"

    def step_deregister():
        reply = client.request(pdu("T", "%d;;%s" % (args.port, name)))
        expect_exact(reply, pdu("A", name), "T")
        return "T %d;;%s -> A %s" % (args.port, name, name)

    def step_search_gone():
        reply = client.request(pdu("S", name))
        expect_error(reply, 3, "S after T")
        return "S %s -> E 3 (gone)" % name

    failed = False
    for step in (step_register, step_refresh, step_search, step_list, step_bad_request, step_deregister, step_search_gone):
        try:
            print("ok    " + step(), flush=True)
        except (CheckFailed, OSError) as err:
            print("FAIL  %s: %s" % (step.__name__[5:], err), flush=True)
            failed = True
            if step is step_register:
                break  # nothing else can work
    client.close()
    print("protocol check %s against %s:%d" % ("FAILED" if failed else "passed", host, port))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

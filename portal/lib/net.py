"""Sockets for the servers the portal starts (the simulators, the run command): no Django here."""

from __future__ import annotations

import socket


def free_port_range(count: int, *, start: int = 19998, stop: int = 60000) -> int:
    """The first port from which ``count`` consecutive loopback ports are free (for the device simulator)."""
    for base in range(start, stop - count, count + 1):
        socks = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(socks):
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} free consecutive ports")


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free one) for a server to listen on; closed on failure."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock

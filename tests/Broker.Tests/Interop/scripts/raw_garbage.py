"""Send malformed bytes to an MQTT broker over a raw socket and report whether it closed the connection.

Prints 'SENT <case>', then 'RECEIVED <hex>' for anything the broker answered, then 'CLOSED' or 'STILL OPEN'.
"""
import argparse
import random
import socket
import time

CONNECT_311 = bytes([0x10, 0x12, 0x00, 0x04]) + b"MQTT" + bytes([0x04, 0x02, 0x00, 0x3C, 0x00, 0x06]) + b"garbag"


def cases():
    rnd = random.Random(20261123)
    noise = bytes([0x00]) + bytes(rnd.getrandbits(8) for _ in range(4095))  # type 0 is reserved: never valid
    return {
        # Remaining Length with a fifth continuation byte: malformed variable byte integer.
        "bad-remaining-length": [bytes([0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])],
        # First packet is not CONNECT.
        "publish-before-connect": [bytes([0x30, 0x06, 0x00, 0x03]) + b"a/bx"],
        # A CONNECT cut short: the rest never arrives.
        "truncated-connect": [CONNECT_311[:9]],
        "random-bytes": [noise],
        # A valid session (None = wait for its CONNACK), then a reserved packet type with a malformed length.
        "garbage-after-connect": [CONNECT_311, None, bytes([0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--case", required=True, choices=sorted(cases()))
    p.add_argument("--timeout", type=float, default=10)
    args = p.parse_args()

    s = socket.create_connection((args.host, args.port), timeout=args.timeout)
    for chunk in cases()[args.case]:
        if chunk is None:
            connack = b""
            while len(connack) < 4:
                data = s.recv(4 - len(connack))
                if not data:
                    break
                connack += data
            print(f"RECEIVED {connack.hex()}")
            continue
        try:
            s.sendall(chunk)
        except OSError as e:
            print(f"SEND FAILED {e}")
            break
    print(f"SENT {args.case}")

    deadline = time.monotonic() + args.timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print("STILL OPEN")
            return
        s.settimeout(remaining)
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if not data:
            print("CLOSED")
            return
        print(f"RECEIVED {data.hex()}")


main()

"""Publish one message with paho-mqtt, wait until the broker acknowledged it (QoS 1/2) and print 'PUBLISHED'."""
import sys
import threading
import time

from paho_common import client, code, parser

p = parser(__doc__)
p.add_argument("--topic", required=True)
p.add_argument("--message", required=True)
p.add_argument("--qos", type=int, default=0)
p.add_argument("--retain", action="store_true")
p.add_argument("--timeout", type=float, default=10)
args = p.parse_args()

connected = threading.Event()
c = client(args)


def on_connect(cl, userdata, flags, rc, properties=None):
    print(f"CONNACK {code(rc)}")
    if code(rc) == 0:
        connected.set()


c.on_connect = on_connect
c.connect(args.host, args.port, keepalive=args.keepalive)
c.loop_start()
if not connected.wait(args.timeout):
    print("ERROR no successful CONNACK")
    sys.exit(2)

info = c.publish(args.topic, args.message, qos=args.qos, retain=args.retain)
deadline = time.monotonic() + args.timeout
while not info.is_published() and time.monotonic() < deadline:
    time.sleep(0.01)
if not info.is_published():
    print("ERROR publish not acknowledged")
    sys.exit(3)
print("PUBLISHED")
c.disconnect()
c.loop_stop()

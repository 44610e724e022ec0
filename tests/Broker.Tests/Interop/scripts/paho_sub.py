"""Subscribe with paho-mqtt and print 'MSG <topic> <qos> <retain> <payload>' per message; exits after --count messages."""
import sys

from paho_common import client, code, parser

p = parser(__doc__)
p.add_argument("--topic", required=True)
p.add_argument("--qos", type=int, default=0)
p.add_argument("--count", type=int, default=1)
args = p.parse_args()

received = 0
c = client(args)


def on_connect(cl, userdata, flags, rc, properties=None):
    print(f"CONNACK {code(rc)}")
    if code(rc) == 0:
        cl.subscribe(args.topic, qos=args.qos)


def on_subscribe(cl, userdata, mid, granted, properties=None):
    print("SUBACK " + " ".join(str(code(g)) for g in granted))


def on_message(cl, userdata, msg):
    global received
    print(f"MSG {msg.topic} {msg.qos} {int(msg.retain)} {msg.payload.decode('utf-8', 'replace')}")
    received += 1
    if received >= args.count:
        cl.disconnect()


def on_disconnect(cl, userdata, rc, properties=None):
    print(f"DISCONNECTED {code(rc)}")


c.on_connect = on_connect
c.on_subscribe = on_subscribe
c.on_message = on_message
c.on_disconnect = on_disconnect
c.connect(args.host, args.port, keepalive=args.keepalive)
c.loop_forever()
sys.exit(0 if received >= args.count else 1)

"""Connect with paho-mqtt and a will, print 'CONNACK 0', then stay connected until killed (or, with --disconnect, disconnect cleanly)."""
from paho_common import client, code, parser

p = parser(__doc__)
p.add_argument("--will-topic", required=True)
p.add_argument("--will-message", required=True)
p.add_argument("--will-qos", type=int, default=1)
p.add_argument("--will-retain", action="store_true")
p.add_argument("--disconnect", action="store_true", help="send DISCONNECT right after CONNACK")
args = p.parse_args()


def on_connect(cl, userdata, flags, rc, properties=None):
    print(f"CONNACK {code(rc)}")
    if args.disconnect:
        cl.disconnect()


c = client(args)
c.will_set(args.will_topic, args.will_message, qos=args.will_qos, retain=args.will_retain)
c.on_connect = on_connect
c.on_disconnect = lambda cl, userdata, rc, properties=None: print(f"DISCONNECTED {code(rc)}")
c.connect(args.host, args.port, keepalive=args.keepalive)
c.loop_forever()

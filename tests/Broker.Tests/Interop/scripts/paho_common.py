"""Shared argument parsing and client construction for the paho-mqtt interop scripts (paho-mqtt 1.6, Debian 12)."""
import argparse

import paho.mqtt.client as mqtt


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--transport", choices=["tcp", "websockets"], default="tcp")
    p.add_argument("--path", default="/mqtt", help="WebSocket path")
    p.add_argument("--version", choices=["311", "5"], default="311")
    p.add_argument("--id", default="")
    p.add_argument("--keepalive", type=int, default=60)
    return p


def client(args):
    protocol = mqtt.MQTTv5 if args.version == "5" else mqtt.MQTTv311
    c = mqtt.Client(client_id=args.id, protocol=protocol, transport=args.transport)
    if args.transport == "websockets":
        c.ws_set_options(path=args.path)
    return c


def code(value):
    """A reason code or granted QoS as a number, for MQTT 3.1.1 ints and MQTT 5 ReasonCodes alike."""
    return getattr(value, "value", value)

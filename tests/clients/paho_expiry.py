"""MQTT 5 message expiry through peerd with paho (Debian python3-paho-mqtt), unmodified.

Usage: paho_expiry.py SUB_PORT PUB_PORT. A persistent subscriber on one daemon goes away; a
publisher on another daemon publishes at QoS 1 one message that expires in 1 s, one in
100 s and one without expiry; once the first has expired, the subscriber comes back.
Prints one JSON line with what it received (payload and message expiry interval, in order)
and how long after publishing it came back. Exits 1 on a timeout.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

sub_port, pub_port = int(sys.argv[1]), int(sys.argv[2])
out = {"received": []}
connected = threading.Event()
subscribed = threading.Event()
last = threading.Event()
acked = threading.Semaphore(0)


def on_connect(client, userdata, flags, rc, properties=None):
    out.setdefault("present", []).append(bool(flags.session_present)
                                         if hasattr(flags, "session_present")
                                         else bool(flags.get("session present", 0)))
    connected.set()


def on_message(client, userdata, msg):
    props = msg.properties.json() if msg.properties else {}
    payload = msg.payload.decode()
    out["received"].append({"payload": payload, "expiry": props.get("MessageExpiryInterval")})
    if payload == "none":
        last.set()


def session(clean):
    c = mqtt.Client(client_id="paho-expiry-sub", protocol=mqtt.MQTTv5)
    c.on_connect, c.on_message = on_connect, on_message
    c.on_subscribe = lambda *a, **k: subscribed.set()
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 300
    connected.clear()
    c.connect("127.0.0.1", sub_port, keepalive=30, clean_start=clean, properties=cp)
    c.loop_start()
    return c


sub = session(True)
ok = connected.wait(10)
sub.subscribe([("exp/#", SubscribeOptions(qos=1))])
ok = ok and subscribed.wait(10)
sub.disconnect()
sub.loop_stop()

pub = mqtt.Client(client_id="paho-expiry-pub", protocol=mqtt.MQTTv5)
pub.on_publish = lambda *a, **k: acked.release()
pub.connect("127.0.0.1", pub_port, keepalive=30)
pub.loop_start()
published_at = time.time()
for payload, expiry in (("short", 1), ("long", 100), ("none", None)):
    pp = Properties(PacketTypes.PUBLISH)
    if expiry is not None:
        pp.MessageExpiryInterval = expiry
    pub.publish("exp/t", payload, qos=1, properties=pp)
for _ in range(3):
    ok = ok and acked.acquire(timeout=10)
pub.disconnect()
pub.loop_stop()

# the subject of the test is time passing: come back once "short" has certainly expired
while time.time() < published_at + 1.5:
    time.sleep(0.1)
out["back_after_s"] = round(time.time() - published_at, 2)
sub = session(False)
ok = ok and connected.wait(10) and last.wait(10)
sub.disconnect()
sub.loop_stop()
print(json.dumps(out))
sys.exit(0 if ok else 1)

"""MQTT 5 properties through peerd with paho (Debian python3-paho-mqtt), unmodified.

Usage: paho_v5.py SUB_PORT PUB_PORT. A subscriber on one daemon, a publisher on another;
prints one JSON line with what the subscriber saw (CONNACK properties, SUBACK reason
codes, the message with its properties). Exits 1 on a timeout.
"""
import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

sub_port, pub_port = int(sys.argv[1]), int(sys.argv[2])
out = {}
connected = threading.Event()
subscribed = threading.Event()
received = threading.Event()
published = threading.Event()


def on_connect(client, userdata, flags, rc, properties=None):
    out["connack"] = {"rc": int(rc.value) if hasattr(rc, "value") else int(rc),
                      "properties": properties.json() if properties else {}}
    connected.set()


def on_subscribe(client, userdata, mid, reason_codes, properties=None):
    out["suback"] = [int(rc.value) for rc in reason_codes]
    subscribed.set()


def on_message(client, userdata, msg):
    out["message"] = {"topic": msg.topic, "payload": msg.payload.decode(), "qos": msg.qos,
                      "properties": msg.properties.json() if msg.properties else {}}
    received.set()


sub = mqtt.Client(client_id="paho-sub", protocol=mqtt.MQTTv5)
sub.on_connect, sub.on_subscribe, sub.on_message = on_connect, on_subscribe, on_message
cp = Properties(PacketTypes.CONNECT)
cp.SessionExpiryInterval = 60
sub.connect("127.0.0.1", sub_port, keepalive=30, clean_start=True, properties=cp)
sub.loop_start()
ok = connected.wait(10)
sp = Properties(PacketTypes.SUBSCRIBE)
sp.SubscriptionIdentifier = 42
sub.subscribe([("p5/#", SubscribeOptions(qos=1)), ("$share/g/p5", SubscribeOptions(qos=1))],
              properties=sp)
ok = ok and subscribed.wait(10)

pub = mqtt.Client(client_id="paho-pub", protocol=mqtt.MQTTv5)
pub.on_publish = lambda c, u, mid: published.set()
pub.connect("127.0.0.1", pub_port, keepalive=30)
pub.loop_start()
pp = Properties(PacketTypes.PUBLISH)
pp.ContentType = "application/json"
pp.ResponseTopic = "p5/reply"
pp.CorrelationData = b"\x01\x02corr"
pp.UserProperty = [("museum", "hall"), ("door", "0")]
pp.MessageExpiryInterval = 120
pp.PayloadFormatIndicator = 1
pub.publish("p5/door", '{"open":true}', qos=1, properties=pp)
ok = ok and published.wait(10) and received.wait(10)
pub.loop_stop()
pub.disconnect()
sub.loop_stop()
sub.disconnect()
print(json.dumps(out))
sys.exit(0 if ok else 1)

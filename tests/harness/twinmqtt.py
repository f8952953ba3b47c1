# SPDX-License-Identifier: Apache-2.0
# An MQTT v5 test client (paho): QoS 1 publishes with acknowledgement tracking, subscriptions that wait for SUBACK, and per-topic message collection.
"""MqttClient for tests (re-exported by twinharness)."""

import os
import threading
import time
from collections import namedtuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from twinutil import LOOPBACK, wait_until

Msg = namedtuple("Msg", "topic payload retain qos at")


class MqttClient:
    """A paho MQTT v5 client for tests: publishes (QoS 1 acks counted), subscribes (waiting
    for SUBACK; subscriptions are remade after a reconnect) and collects every message it
    receives per topic."""

    def __init__(self, broker, client_id=None, keepalive=30, clean_start=True,
                 session_expiry_s=None, max_inflight=100, connect_timeout=10.0, on_create=None,
                 username=None, password=None):
        """Connects to `broker` (anything with a .port on 127.0.0.1), as `username` when given;
        on_create(client) is called before waiting for CONNACK (the harness registers it for
        teardown)."""
        self.broker = broker
        self.client_id = client_id or f"test-{os.getpid()}-{os.urandom(4).hex()}"
        self._cond = threading.Condition()
        self._msgs = {}
        self._all = []
        self._subs = {}
        self._suback = {}
        self.connected = False
        self.connects = 0
        self.sent = 0
        self.acked = 0
        c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.reconnect_delay_set(min_delay=0.1, max_delay=1)
        if username is not None:
            c.username_pw_set(username, password)
        props = None
        if session_expiry_s is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry_s
        self._c = c
        c.connect(LOOPBACK, broker.port, keepalive=keepalive, clean_start=clean_start,
                  properties=props)
        c.loop_start()
        if on_create:
            on_create(self)
        wait_until(lambda: self.connected, connect_timeout,
                   what=f"MQTT client {self.client_id} to connect to port {broker.port}")

    # -- paho callbacks (network thread) --

    def _on_connect(self, client, userdata, flags, reason, properties):
        code = getattr(reason, "value", reason)
        if code >= 0x80 or (code != 0 and not hasattr(reason, "value")):
            return
        with self._cond:
            self.connected = True
            self.connects += 1
            subs = dict(self._subs)
            self._cond.notify_all()
        for topic, qos in subs.items():
            client.subscribe(topic, qos)

    def _on_disconnect(self, client, userdata, reason, properties=None):
        with self._cond:
            self.connected = False
            self._cond.notify_all()

    def _on_message(self, client, userdata, message):
        m = Msg(message.topic, bytes(message.payload), bool(message.retain), message.qos,
                time.monotonic())
        with self._cond:
            self._msgs.setdefault(m.topic, []).append(m)
            self._all.append(m)
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self._cond:
            self.acked += 1
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cond:
            self._suback[mid] = [getattr(rc, "value", rc) for rc in reason_codes]
            self._cond.notify_all()

    # -- API --

    def subscribe(self, topic, qos=1, timeout=10.0):
        with self._cond:
            self._subs[topic] = qos
        result, mid = self._c.subscribe(topic, qos)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError(f"subscribe {topic}: {mqtt.error_string(result)}")
        codes = wait_until(lambda: self._suback.get(mid), timeout, what=f"SUBACK for {topic}")
        if any(c >= 0x80 for c in codes):
            raise AssertionError(f"subscribe {topic} refused: {codes}")
        return self

    def publish(self, topic, payload, qos=1, retain=False):
        """Queues a publish; returns paho's MQTTMessageInfo (is_published() after PUBACK)."""
        info = self._c.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise AssertionError(f"publish {topic}: {mqtt.error_string(info.rc)}")
        with self._cond:
            self.sent += 1  # paho calls on_publish for QoS 0 too (once written)
        return info

    def wait_acked(self, timeout=30.0):
        """Waits until every publish so far completed (QoS 1: its PUBACK arrived)."""
        return wait_until(lambda: self.acked >= self.sent, timeout,
                          what=f"PUBACKs ({self.acked} of {self.sent})")

    def messages(self, topic=None):
        """Messages received on `topic` (all topics when None), in arrival order."""
        with self._cond:
            if topic is None:
                return list(self._all)
            return list(self._msgs.get(topic, []))

    def count(self, topic):
        with self._cond:
            return len(self._msgs.get(topic, []))

    def clear(self, topic=None):
        with self._cond:
            if topic is None:
                self._msgs.clear()
                self._all.clear()
            else:
                self._msgs.pop(topic, None)
                self._all = [m for m in self._all if m.topic != topic]

    def wait_message(self, topic, predicate=None, timeout=10.0, start=0):
        """The first message on `topic` (from index `start`) for which predicate(msg) holds."""
        def find():
            for m in self.messages(topic)[start:]:
                if predicate is None or predicate(m):
                    return m
            return None
        return wait_until(find, timeout, what=f"a matching message on {topic}")

    def close(self):
        try:
            self._c.disconnect()
        except Exception:  # pylint: disable=broad-except
            pass
        self._c.loop_stop()

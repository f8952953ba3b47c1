// SPDX-License-Identifier: Apache-2.0
// The dashboard's network side: config.json and plant.json, the twin.proto schema, and the MQTT-over-WebSockets connection with a login form when the broker refuses.
(function (T) {
  "use strict";

  const DEFAULTS = { topicRoot: "twin/v1", username: "", password: "" };
  const AUTH_CODES = new Set([4, 5, 134, 135]); // MQTT 3.1.1 and 5 "bad credentials / not authorised"
  const CRED_KEY = "twinloop.dashboard.credentials";

  // A JSON file next to index.html, or null when it is missing or not JSON.
  async function loadJson(url) {
    try {
      const r = await fetch(url, { cache: "no-store" });
      if (!r.ok) return null;
      return await r.json();
    } catch (err) {
      console.warn(`${url}: ${err.message}`);
      return null;
    }
  }

  function defaultUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/`;
  }

  async function loadConfig() {
    const file = (await loadJson("config.json")) || {};
    const cfg = Object.assign({}, DEFAULTS, file);
    cfg.mqttUrl = file.mqttUrl || defaultUrl();
    cfg.topicRoot = String(cfg.topicRoot || DEFAULTS.topicRoot).replace(/\/+$/, "");
    cfg.fromFile = Object.keys(file).length > 0;
    const saved = sessionStorage.getItem(CRED_KEY);
    if (saved) {
      try {
        Object.assign(cfg, JSON.parse(saved));
      } catch (err) {
        sessionStorage.removeItem(CRED_KEY);
      }
    }
    return cfg;
  }

  // The message types of twin.v1, field names as in the .proto (keepCase).
  async function loadProto() {
    const root = new protobuf.Root();
    await root.load("vendor/twin.proto", { keepCase: true });
    const names = ["TwinState", "Prediction", "Alert", "ScenarioRequest", "ScenarioProgress",
      "ScenarioResult", "Recommendation", "Command"];
    const types = {};
    for (const n of names) types[n] = root.lookupType(`twin.v1.${n}`);
    return types;
  }

  const TO_OBJECT = { longs: Number, enums: String, defaults: true, arrays: true };

  // Decodes a payload to a plain object; throws on bytes that are not this message.
  function decode(type, payload) {
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    return type.toObject(type.decode(bytes), TO_OBJECT);
  }

  // Encodes a plain object (enums by name); throws on a field of the wrong type.
  function encode(type, obj) {
    const msg = type.fromObject(obj);
    const err = type.verify(msg);
    if (err) throw new Error(err);
    return type.encode(msg).finish();
  }

  // Connects and keeps reconnecting; hooks: state(word, detail), message(topic, payload,
  // packet), connected(client). An authorisation refusal stops retrying and opens the
  // login dialog, whose answer reconnects.
  function connect(cfg, hooks) {
    const opts = {
      clientId: `twin-dashboard-${Math.random().toString(16).slice(2, 10)}`,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 2000,
      connectTimeout: 10000,
      protocolVersion: 4,
    };
    if (cfg.username) {
      opts.username = cfg.username;
      opts.password = cfg.password || "";
    }
    hooks.state("connecting", cfg.mqttUrl);
    const client = mqtt.connect(cfg.mqttUrl, opts);
    client.on("connect", () => {
      hooks.state("online", `${cfg.mqttUrl} as ${cfg.username || "anonymous"}`);
      hooks.connected(client);
    });
    client.on("reconnect", () => hooks.state("reconnecting", cfg.mqttUrl));
    client.on("offline", () => hooks.state("offline", cfg.mqttUrl));
    client.on("message", hooks.message);
    client.on("error", (err) => {
      if (AUTH_CODES.has(err.code)) {
        client.end(true);
        hooks.state("refused", `${cfg.mqttUrl}: ${err.message}`);
        askLogin(cfg, err.message, hooks);
      } else {
        hooks.state("error", err.message);
      }
    });
    return client;
  }

  function askLogin(cfg, why, hooks) {
    const dlg = document.getElementById("login");
    const form = document.getElementById("login-form");
    document.getElementById("login-why").textContent =
      `The broker refused ${cfg.username ? `user "${cfg.username}"` : "an anonymous connection"}: ${String(why).replace(/\.$/, "")}.`;
    form.elements.username.value = cfg.username || "";
    form.onsubmit = () => {
      const creds = { username: form.elements.username.value, password: form.elements.password.value };
      sessionStorage.setItem(CRED_KEY, JSON.stringify(creds));
      Object.assign(cfg, creds);
      T.net.client = connect(cfg, hooks);
    };
    if (typeof dlg.showModal === "function") dlg.showModal();
    else dlg.setAttribute("open", "");
  }

  T.net = { loadJson, loadConfig, loadProto, decode, encode, connect, client: null };
})((window.Twin = window.Twin || {}));

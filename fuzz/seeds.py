#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/corpus/<target>/<name>, from testdata/
(specification vectors and PUSH_DATA samples) and a few hand-written inputs.

Run from anywhere: `python3 fuzz/seeds.py`. It only adds or overwrites its own
files; libFuzzer's finds go to fuzz/work/ (scripts/fuzz), not here. Keep the
corpus small: every file here is also run by the stable test suite
(tests/fuzz_corpus.rs of each crate).
"""
import base64
import glob
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vectors(name):
    with open(os.path.join(ROOT, "testdata", "vectors", name)) as f:
        return json.load(f)


# ---- PHYPayload, and the frames the network server opens -------------------
phys = []
for file in ["data_uplink.json", "data_downlink.json", "join_accept.json",
             "join_request_mic.json", "rejoin_request_mic.json"]:
    for i, v in enumerate(vectors(file)):
        if "phy_payload" in v:
            phys.append((f"{file[:-5]}-{i}", bytes.fromhex(v["phy_payload"])))
for path in sorted(glob.glob(os.path.join(ROOT, "testdata", "udp", "*.json"))):
    body = json.load(open(path))
    for i, rx in enumerate(body.get("rxpk", [])):
        data = base64.b64decode(rx["data"])
        if data not in [p for _, p in phys]:
            phys.append((f"udp-{os.path.basename(path)[:-5]}-{i}", data))
for name, data in phys:
    write("phy_payload", name, data)
    # open_frames: the first byte is the high byte of the 32-bit FCnt.
    write("open_frames", name, b"\x00" + data)
    write("open_frames", name + "-fcnt-high", b"\x01" + data)

# ---- MAC commands (both directions are tried on every input) ---------------
mac = set()
for file in ["data_uplink.json", "data_downlink.json"]:
    for v in vectors(file):
        if v.get("f_opts_plain"):
            mac.add(v["f_opts_plain"])
for v in vectors("f_opts_encryption.json"):
    mac.add(v["plaintext"])
# The round-trip table of crates/lorikeet-lorawan/src/mac/tests.rs: every command.
tests = open(os.path.join(ROOT, "crates", "lorikeet-lorawan", "src", "mac", "tests.rs")).read()
singles = []
table = tests[tests.index("fn every_command()"):]
for m in re.finditer(r"vec!\[((?:0x[0-9a-f]{2}|\d+)(?:, (?:0x[0-9a-f]{2}|\d+))*)\]", table):
    b = bytes(int(x, 0) for x in m.group(1).split(", "))
    if b and b[0] <= 0x20:
        singles.append(b.hex())
mac.update(singles)
# A few multi-command FOpts as devices and servers send them.
mac.update(["0307" "0307" "0307", "02" "0673ff", "0351ff0001" "0351ff0001", "0a01287684" "0c65"])
for h in sorted(mac):
    write("mac_commands", h, bytes.fromhex(h))

# ---- Semtech UDP datagrams -------------------------------------------------
EUI = bytes.fromhex("aa555a0000000001")


def push(version, token, body):
    return bytes([version, token >> 8, token & 255, 0]) + EUI + body


for path in sorted(glob.glob(os.path.join(ROOT, "testdata", "udp", "*.json"))):
    body = open(path, "rb").read().strip()
    name = os.path.basename(path)[:-5]
    write("semtech_udp", f"push-{name}", push(2, 0x1234, body))
write("semtech_udp", "push-v1-nul-terminated",
      push(1, 7, open(os.path.join(ROOT, "testdata", "udp", "sx1301_with_time.json"), "rb").read().strip() + b"\0\0"))
write("semtech_udp", "push-empty-object", push(2, 1, b"{}"))
write("semtech_udp", "pull-v2", bytes([2, 0xbe, 0xef, 2]) + EUI)
write("semtech_udp", "pull-v1", bytes([1, 0, 7, 2]) + EUI)
for name, body in [
    ("sent", b""),
    ("sent-empty-ack", b'{"txpk_ack":{}}'),
    ("sent-none", b'{"txpk_ack":{"error":"NONE"}}'),
    ("too-late", b'{"txpk_ack":{"error":"TOO_LATE"}}'),
    ("tx-power-error", b'{"txpk_ack":{"error":"TX_POWER","value":14}}'),
    ("tx-power-warn", b'{"txpk_ack":{"warn":"TX_POWER","value":27}}'),
    ("other-error", b'{"txpk_ack":{"error":"SOMETHING_ELSE"}}'),
]:
    write("semtech_udp", f"txack-{name}", bytes([2, 0x42, 0x42, 5]) + EUI + body)

# ---- REST API bodies -------------------------------------------------------
# The first byte picks the route: its index in FUZZ_BODY_ROUTES
# (crates/lorikeet-api/src/handlers/mod.rs); + 16 * n picks device profile n.
ROUTES = ["TenantCreate", "TenantUpdate", "ApiKeyCreate", "ApplicationCreate",
          "ApplicationUpdate", "HttpIntegrationPut", "ProfileCreate", "ProfileUpdate",
          "DeviceCreate", "DeviceUpdate", "DeviceImport", "KeysPut", "Activate",
          "QueuePost", "GatewayCreate", "GatewayUpdate"]
APP = "00000000-0000-0000-0000-000000000a99"
PROFILE = "00000000-0000-0000-0000-00000000feed"
device = {"devEui": "70B3D57ED005A1F1", "joinEui": "70B3D57ED0000000", "name": "meter 18",
          "description": "basement", "applicationId": APP, "deviceProfileId": PROFILE,
          "tags": {"floor": "-1"}, "skipFcntCheck": False, "disabled": False}
abp10 = {"devAddr": "26011BDB", "appSKey": "000102030405060708090A0B0C0D0E0F",
         "nwkSKey": "101112131415161718191A1B1C1D1E1F", "fCntUp": 10, "rx2Dr": 3}
abp11 = {"devAddr": "26011BDC", "appSKey": "000102030405060708090A0B0C0D0E0F",
         "nwkSEncKey": "101112131415161718191A1B1C1D1E1F",
         "sNwkSIntKey": "202122232425262728292A2B2C2D2E2F",
         "fNwkSIntKey": "303132333435363738393A3B3C3D3E3F",
         "rx1Delay": 5, "rx1DrOffset": 1, "rx2FrequencyHz": 923200000}
api = [
    ("tenant", "TenantCreate", 0, {"name": "Acme"}),
    ("tenant-rename", "TenantUpdate", 0, {"name": "  Acme Corp  "}),
    ("api-key", "ApiKeyCreate", 0, {"name": "ci", "tenantId": "00000000-0000-0000-0000-000000000007"}),
    ("application", "ApplicationCreate", 0, {"name": "meters", "description": "water"}),
    ("application-update", "ApplicationUpdate", 0, {"name": "meters", "tenantId": "00000000-0000-0000-0000-000000000007"}),
    ("http", "HttpIntegrationPut", 0, {"url": "https://example.com/hook?x=1",
                                       "headers": {"Authorization": "Bearer t"}, "signingSecret": "s3cret"}),
    ("profile", "ProfileCreate", 0, {"name": "class A", "region": "EU868", "macVersion": "1.0.3",
                                     "regParamsRevision": "RP002-1.0.3"}),
    ("profile-full", "ProfileUpdate", 0, {
        "name": "full", "description": "d", "region": "US915", "macVersion": "1.1.0",
        "regParamsRevision": "RP001-1.1revB", "supportsOtaa": False, "supportsClassC": True,
        "adrEnabled": True, "rx1Delay": 2, "rx1DrOffset": 1, "rx2Dr": 8, "rx2FrequencyHz": 923300000,
        "payloadCodec": {"type": "javascript", "script": "function decodeUplink(i){return {data:{}}}"},
        "macSettings": {"adrAlgorithm": "default", "installationMarginDb": 12, "adrMinDr": 0,
                        "adrMaxDr": 5, "adrAckLimitExp": 6, "adrAckDelayExp": 5,
                        "rejoinMaxTimeN": 10, "rejoinMaxCountN": 8}}),
    ("device", "DeviceCreate", 0, device),
    ("device-update", "DeviceUpdate", 0, {k: v for k, v in device.items() if k != "devEui"}),
    ("import", "DeviceImport", 0, {"devices": [
        dict(device, keys={"appKey": "2B7E151628AED2A6ABF7158809CF4F3C"}),
        dict(device, devEui="70B3D57ED005A1F2", activation=abp10),
        "not an object"]}),
    ("keys-1.0", "KeysPut", 0, {"appKey": "2B7E151628AED2A6ABF7158809CF4F3C"}),
    ("keys-1.1", "KeysPut", 5, {"appKey": "2B7E151628AED2A6ABF7158809CF4F3C",
                                "nwkKey": "000102030405060708090A0B0C0D0E0F"}),
    ("activate-1.0", "Activate", 0, abp10),
    ("activate-1.1-as923-3", "Activate", 5, abp11),
    ("activate-custom-profile", "Activate", 12, abp10),
    ("queue-data", "QueuePost", 0, {"fPort": 2, "data": "AQID", "confirmed": True,
                                    "expiresAt": "2030-01-01T00:00:00Z"}),
    ("queue-object", "QueuePost", 0, {"fPort": 3, "object": {"temperatureSensor": {"1": 21.5}}}),
    ("gateway", "GatewayCreate", 0, {"gatewayId": "0016c001f153a14c", "name": "roof",
                                     "location": {"latitude": 52.1, "longitude": 4.3, "altitude": 12}}),
    ("gateway-update", "GatewayUpdate", 0, {"name": "roof", "locationSource": "reported"}),
]
for name, route, variant, body in api:
    selector = ROUTES.index(route) + 16 * variant
    write("api_bodies", name, bytes([selector]) + json.dumps(body).encode())
write("api_bodies", "reject-query-string", bytes([0]) + b"limit=5&offset=10&tenantId=00000000-0000-0000-0000-000000000007")

# ---- Cayenne LPP -----------------------------------------------------------
with open(os.path.join(ROOT, "crates", "lorikeet-codec", "testdata", "cayenne_lpp.json")) as f:
    lpp = json.load(f)
for i, v in enumerate(lpp):
    write("cayenne", f"vector-{i}", bytes.fromhex(v["hex"]))
for i, v in enumerate(lpp[:6]):
    write("cayenne", f"object-{i}", json.dumps(v["object"]))

# ---- JavaScript codec: first byte FPort, then the program of JS_SCRIPT -------
# (crates/lorikeet-codec/src/fuzzing.rs: the low nibble of each op byte is the op).
js = {
    "numbers": bytes([1, 0x00, 42, 0x01, 0x12, 0x34, 0x56, 0x78, 0x02, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1]),
    "strings": bytes([2, 0x23, 0x00, 0xe9, 0x00, 0x41, 0x00, 0x42, 0x44, 0xe2, 0x82, 0xac, 0x14, 0x41]),
    "reject-lone-surrogate": bytes([2, 0x13, 0xd8, 0x00]),
    "nesting": bytes([3, 0x05, 0x06, 0x00, 1, 0x0a, 0x2a, 0x07, 0x07, 0x08 | 0x20, 0x12, 0x34]),
    "special": bytes([4, 0x0a, 0x2a, 0x4a, 0x8a, 0xca, 0xea, 0x09 | 0x10, 0x7f, 0xff, 0xff, 0xff]),
    "reject-cycle": bytes([4, 0x05, 0x00, 1, 0x0c]),
    "reject-errors": bytes([5, 0x1b, 0x00, 0x41, 0x3d, 0x00, 0x45]),
    "reject-throw": bytes([6, 0x3f, 0x00, 0x58]),
    "keys": bytes([7, 0x1e, 0xdc, 0x00, 9, 0x0e, 1]),
    "downlink-object": bytes([10]) + b'{"interval":60,"mode":"eco","flags":[true,false]}',
    "downlink-raw": bytes([0]) + b'{"bytes":[1,2,255],"fPort":2,"warnings":["w"]}',
    "reject-downlink-fport": bytes([0]) + b'{"bytes":[1,2,255],"fPort":224}',
    "downlink-errors": bytes([11]) + b'{"errors":["nope"],"ret":{"bytes":"x"}}',
}
for name, data in js.items():
    write("js_codec", name, data)

total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(CORPUS, "*", "*")))
print(f"fuzz/corpus: {total} bytes")

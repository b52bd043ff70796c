#!/usr/bin/env python3
"""Independent LoRaWAN 1.0/1.1 crypto, written from the specifications, used to
check every record in testdata/vectors/*.json.

It shares no code with the Rust crate: AES and CMAC come from the Python
`cryptography` package. Run it from anywhere:

    python3 testdata/vectors/tools/lorawan_reference.py

It prints one line per record and exits non-zero if any expected value differs.
It is a local cross-check only; the Rust test suite does not need Python.
"""
import json
import pathlib
import sys

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def h(s):
    return bytes.fromhex(s)


def aes_enc(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def aes_dec(key, block):
    d = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return d.update(block) + d.finalize()


def aes_cmac(key, msg):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


def le(value, n):
    return value.to_bytes(n, "little")


def eui_le(hex_msb_first):
    return h(hex_msb_first)[::-1]


# --- MIC --------------------------------------------------------------------

def b0(direction, dev_addr_hex, f_cnt, msg_len, conf_f_cnt=0):
    return (bytes([0x49]) + le(conf_f_cnt & 0xFFFF, 2) + b"\x00\x00" + bytes([direction])
            + eui_le(dev_addr_hex) + le(f_cnt, 4) + b"\x00" + bytes([msg_len]))


def b1(dev_addr_hex, f_cnt, msg_len, conf_f_cnt, tx_dr, tx_ch):
    return (bytes([0x49]) + le(conf_f_cnt & 0xFFFF, 2) + bytes([tx_dr, tx_ch, 0])
            + eui_le(dev_addr_hex) + le(f_cnt, 4) + b"\x00" + bytes([msg_len]))


def data_fields(phy):
    """DevAddr (MSB-first hex), FCtrl, FOptsLen, FPort or None, FOpts, FRMPayload, MIC."""
    dev_addr = phy[1:5][::-1].hex()
    f_ctrl = phy[5]
    f_opts_len = f_ctrl & 0x0F
    f_opts = phy[8:8 + f_opts_len]
    rest = phy[8 + f_opts_len:-4]
    f_port = rest[0] if rest else None
    frm = rest[1:] if rest else b""
    return dev_addr, f_ctrl, f_port, f_opts, frm, phy[-4:]


def uplink_mic(r, phy):
    msg = phy[:-4]
    dev_addr, f_ctrl, *_ = data_fields(phy)
    if r["version"] == "1.0":
        return aes_cmac(h(r["nwk_s_key"]), b0(0, dev_addr, r["f_cnt"], len(msg)) + msg)[:4]
    ack = bool(f_ctrl & 0x20)
    conf = r.get("conf_f_cnt", 0) if ack else 0
    cmac_s = aes_cmac(h(r["s_nwk_s_int_key"]),
                      b1(dev_addr, r["f_cnt"], len(msg), conf, r["tx_dr"], r["tx_ch"]) + msg)
    cmac_f = aes_cmac(h(r["f_nwk_s_int_key"]), b0(0, dev_addr, r["f_cnt"], len(msg)) + msg)
    return cmac_s[:2] + cmac_f[:2]


def downlink_mic(r, phy):
    msg = phy[:-4]
    dev_addr, f_ctrl, *_ = data_fields(phy)
    if r["version"] == "1.0":
        return aes_cmac(h(r["nwk_s_key"]), b0(1, dev_addr, r["f_cnt"], len(msg)) + msg)[:4]
    conf = r.get("conf_f_cnt", 0) if f_ctrl & 0x20 else 0
    return aes_cmac(h(r["s_nwk_s_int_key"]), b0(1, dev_addr, r["f_cnt"], len(msg), conf) + msg)[:4]


# --- encryption ---------------------------------------------------------------

def frm_crypt(key, direction, dev_addr_hex, f_cnt, data):
    out = bytearray()
    for i in range(0, len(data), 16):
        a = (bytes([1, 0, 0, 0, 0, direction]) + eui_le(dev_addr_hex) + le(f_cnt, 4)
             + bytes([0, (i // 16) + 1]))
        s = aes_enc(key, a)
        out += bytes(x ^ y for x, y in zip(data[i:i + 16], s))
    return bytes(out)


FOPTS_COUNTER_BYTE = {"FCntUp": 1, "NFCntDown": 1, "AFCntDown": 2}


def f_opts_crypt(key, counter, dev_addr_hex, f_cnt, data):
    """LoRaWAN 1.1 FOpts encryption as corrected by the 1.1 errata."""
    direction = 0 if counter == "FCntUp" else 1
    a = (bytes([1, 0, 0, 0, FOPTS_COUNTER_BYTE[counter], direction]) + eui_le(dev_addr_hex)
         + le(f_cnt, 4) + bytes([0, 1]))
    s = aes_enc(key, a)
    return bytes(x ^ y for x, y in zip(data, s))


# --- keys ---------------------------------------------------------------------

def derive(key, first, *parts):
    block = bytes([first]) + b"".join(parts)
    return aes_enc(key, block + b"\x00" * (16 - len(block)))


# --- checks per file ----------------------------------------------------------

def check_join_request(r):
    phy = h(r["phy_payload"])
    out = {"mic": aes_cmac(h(r["key"]), phy[:-4])[:4].hex()}
    out["phy_mic"] = phy[-4:].hex()
    return [("mic", r["mic"], out["mic"]), ("mic in frame", r["mic"], out["phy_mic"]),
            ("join_eui", r["join_eui"], phy[1:9][::-1].hex()),
            ("dev_eui", r["dev_eui"], phy[9:17][::-1].hex()),
            ("dev_nonce", r["dev_nonce"], int.from_bytes(phy[17:19], "little"))]


def ja_plaintext(r):
    p = (le(r["join_nonce"], 3) + eui_le(r["home_net_id"]) + eui_le(r["dev_addr"])
         + bytes([r["dl_settings"], r["rx_delay"]]))
    if r.get("cf_list"):
        p += h(r["cf_list"])
    return p


JOIN_REQ_TYPE = {"join": 0xFF, "rejoin0": 0, "rejoin1": 1, "rejoin2": 2}


def check_join_accept(r):
    plain = ja_plaintext(r)
    mhdr = bytes([0x20])
    if r["dl_settings"] & 0x80:
        mic_in = (bytes([JOIN_REQ_TYPE[r["join_type"]]]) + eui_le(r["join_eui"])
                  + le(r["dev_nonce"], 2) + mhdr + plain)
    else:
        mic_in = mhdr + plain
    mic = aes_cmac(h(r["mic_key"]), mic_in)[:4]
    checks = [("mic", r["mic"], mic.hex())]
    if "phy_payload" in r:
        pt = plain + mic
        ct = b"".join(aes_dec(h(r["enc_key"]), pt[i:i + 16]) for i in range(0, len(pt), 16))
        checks.append(("phy_payload", r["phy_payload"], (mhdr + ct).hex()))
        enc = h(r["phy_payload"])[1:]
        back = b"".join(aes_enc(h(r["enc_key"]), enc[i:i + 16]) for i in range(0, len(enc), 16))
        checks.append(("decrypted", (plain + mic).hex(), back.hex()))
    return checks


def check_rejoin_request(r):
    phy = h(r["phy_payload"])
    return [("mic", r["mic"], aes_cmac(h(r["key"]), phy[:-4])[:4].hex()),
            ("mic in frame", r["mic"], phy[-4:].hex())]


def check_key_derivation(r):
    checks = []
    jn = le(r["join_nonce"], 3)
    dn = le(r["dev_nonce"], 2)
    if r["version"] == "1.0":
        nid = eui_le(r["net_id"])
        k = h(r["app_key"])
        checks.append(("nwk_s_key", r["nwk_s_key"], derive(k, 1, jn, nid, dn).hex()))
        checks.append(("app_s_key", r["app_s_key"], derive(k, 2, jn, nid, dn).hex()))
    else:
        je = eui_le(r["join_eui"])
        nk = h(r["nwk_key"])
        if "f_nwk_s_int_key" in r:
            checks.append(("f_nwk_s_int_key", r["f_nwk_s_int_key"], derive(nk, 1, jn, je, dn).hex()))
            checks.append(("s_nwk_s_int_key", r["s_nwk_s_int_key"], derive(nk, 3, jn, je, dn).hex()))
            checks.append(("nwk_s_enc_key", r["nwk_s_enc_key"], derive(nk, 4, jn, je, dn).hex()))
        if "app_s_key" in r:
            checks.append(("app_s_key", r["app_s_key"], derive(h(r["app_key"]), 2, jn, je, dn).hex()))
        if "js_int_key" in r:
            de = eui_le(r["dev_eui"])
            checks.append(("js_int_key", r["js_int_key"], derive(nk, 6, de).hex()))
            checks.append(("js_enc_key", r["js_enc_key"], derive(nk, 5, de).hex()))
    return checks


def check_data(r, uplink):
    phy = h(r["phy_payload"])
    dev_addr, f_ctrl, f_port, f_opts, frm, mic = data_fields(phy)
    calc = uplink_mic(r, phy) if uplink else downlink_mic(r, phy)
    checks = [("mic", r["mic"], calc.hex()), ("mic in frame", r["mic"], mic.hex())]
    if "frm_payload_plain" in r:
        if f_port == 0:
            key = h(r["nwk_s_key"] if r["version"] == "1.0" else r["nwk_s_enc_key"])
        else:
            key = h(r["app_s_key"])
        plain = frm_crypt(key, 0 if uplink else 1, dev_addr, r["f_cnt"], frm)
        checks.append(("frm_payload_plain", r["frm_payload_plain"], plain.hex()))
    if "f_opts_plain" in r:
        if r["version"] == "1.1" and f_opts:
            if uplink:
                counter = "FCntUp"
            else:
                counter = "AFCntDown" if f_port not in (None, 0) else "NFCntDown"
            plain = f_opts_crypt(h(r["nwk_s_enc_key"]), counter, dev_addr, r["f_cnt"], f_opts)
        else:
            plain = f_opts
        checks.append(("f_opts_plain", r["f_opts_plain"], plain.hex()))
    return checks


def check_f_opts(r):
    out = f_opts_crypt(h(r["key"]), r["counter"], r["dev_addr"], r["f_cnt"], h(r["plaintext"]))
    return [("ciphertext", r["ciphertext"], out.hex())]


def check_frm(r):
    direction = 0 if r["uplink"] else 1
    out = frm_crypt(h(r["key"]), direction, r["dev_addr"], r["f_cnt"], h(r["plaintext"]))
    return [("ciphertext", r["ciphertext"], out.hex())]


CHECKERS = {
    "join_request_mic.json": check_join_request,
    "join_accept.json": check_join_accept,
    "rejoin_request_mic.json": check_rejoin_request,
    "key_derivation.json": check_key_derivation,
    "data_uplink.json": lambda r: check_data(r, True),
    "data_downlink.json": lambda r: check_data(r, False),
    "f_opts_encryption.json": check_f_opts,
    "frm_payload_encryption.json": check_frm,
}


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    failed = 0
    for name, check in CHECKERS.items():
        path = root / name
        if not path.exists():
            print(f"{name}: missing")
            failed += 1
            continue
        for i, r in enumerate(json.loads(path.read_text())):
            for field, want, got in check(r):
                if isinstance(want, str):
                    want, got = want.lower(), str(got).lower()
                ok = want == got
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name}[{i}] {field}: want {want} got {got}")
    print("FAILED" if failed else "all records agree")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

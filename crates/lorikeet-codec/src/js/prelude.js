// Lorikeet's JavaScript prelude, run in every codec runtime before the script.
//
// `Buffer`: the part of Node's Buffer that payload codecs use, because ChirpStack
// v4 provides Buffer and many of its codecs call `Buffer.from(bytes)`,
// `buf.readUInt16BE(0)` or `buf.toString("hex")`. A Buffer is a Uint8Array with:
//   Buffer.from(array | arrayLike | ArrayBuffer[, offset, length] | string[, encoding])
//   Buffer.alloc(size[, fill]), Buffer.concat(list[, totalLength]),
//   Buffer.isBuffer(x), Buffer.byteLength(string[, encoding]), new Buffer(...)
//   buf.toString([encoding[, start[, end]]]), buf.toJSON(), buf.equals(other),
//   buf.slice/subarray (views, as in Node), buf.read*/write* for
//   (U)Int8, (U)Int16BE/LE, (U)Int32BE/LE, FloatBE/LE, DoubleBE/LE,
//   BigInt64BE/LE and BigUInt64BE/LE (with the lowercase `Uint` aliases).
// Encodings: "utf8"/"utf-8" (default), "hex", "base64", "base64url",
// "ascii", "latin1"/"binary".
(function () {
  "use strict";

  var HEX = "0123456789abcdef";
  var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  function normEncoding(encoding) {
    var e = encoding === undefined ? "utf8" : String(encoding).toLowerCase();
    switch (e) {
      case "utf8": case "utf-8": return "utf8";
      case "hex": return "hex";
      case "base64": return "base64";
      case "base64url": return "base64url";
      case "ascii": return "ascii";
      case "latin1": case "binary": return "latin1";
      default: throw new TypeError("Unknown encoding: " + encoding);
    }
  }

  function utf8Encode(str) {
    var out = [];
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        var d = str.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate
      if (c < 0x80) {
        out.push(c);
      } else if (c < 0x800) {
        out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
      } else if (c < 0x10000) {
        out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
      } else {
        out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
      }
    }
    return out;
  }

  function utf8Decode(b, start, end) {
    var s = "";
    var i = start;
    while (i < end) {
      var c = b[i];
      var need = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
      var cp = need === 0 ? c : need === 1 ? c & 0x1f : need === 2 ? c & 0x0f : c & 0x07;
      var ok = need >= 0 && i + need < end;
      for (var k = 1; ok && k <= need; k++) {
        var cc = b[i + k];
        if ((cc & 0xc0) !== 0x80) ok = false;
        else cp = (cp << 6) | (cc & 0x3f);
      }
      if (ok && ((need === 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need === 3 && (cp < 0x10000 || cp > 0x10ffff)))) {
        ok = false;
      }
      if (!ok) {
        s += "\ufffd";
        i += 1;
        continue;
      }
      s += String.fromCodePoint(cp);
      i += need + 1;
    }
    return s;
  }

  function hexDecode(str) {
    var out = [];
    for (var i = 0; i + 1 < str.length; i += 2) {
      var hi = HEX.indexOf(str[i].toLowerCase());
      var lo = HEX.indexOf(str[i + 1].toLowerCase());
      if (hi < 0 || lo < 0) break; // Node stops at the first invalid pair
      out.push((hi << 4) | lo);
    }
    return out;
  }

  function base64Decode(str) {
    var out = [];
    var acc = 0;
    var bits = 0;
    for (var i = 0; i < str.length; i++) {
      var ch = str[i];
      if (ch === "=") break;
      if (ch === "-") ch = "+";
      else if (ch === "_") ch = "/";
      var v = B64.indexOf(ch);
      if (v < 0) continue; // whitespace and other noise are skipped, as in Node
      acc = (acc << 6) | v;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.push((acc >> bits) & 0xff);
      }
    }
    return out;
  }

  function base64Encode(b, start, end, url) {
    var s = "";
    for (var i = start; i < end; i += 3) {
      var n = (b[i] << 16) | ((i + 1 < end ? b[i + 1] : 0) << 8) | (i + 2 < end ? b[i + 2] : 0);
      s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
      s += i + 1 < end ? B64[(n >> 6) & 63] : url ? "" : "=";
      s += i + 2 < end ? B64[n & 63] : url ? "" : "=";
    }
    return url ? s.replace(/\+/g, "-").replace(/\//g, "_") : s;
  }

  function encodeString(str, encoding) {
    switch (normEncoding(encoding)) {
      case "utf8": return utf8Encode(str);
      case "hex": return hexDecode(str);
      case "base64": case "base64url": return base64Decode(str);
      default: {
        var out = new Array(str.length);
        for (var i = 0; i < str.length; i++) out[i] = str.charCodeAt(i) & 0xff;
        return out;
      }
    }
  }

  class Buffer extends Uint8Array {
    constructor(a, b, c) {
      if (typeof a === "string") {
        var bytes = encodeString(a, b);
        super(bytes.length);
        this.set(bytes);
      } else if (b === undefined) {
        super(a);
      } else {
        super(a, b, c);
      }
    }

    static from(value, encodingOrOffset, length) {
      if (typeof value === "string") return new Buffer(value, encodingOrOffset);
      if (value instanceof ArrayBuffer) return new Buffer(value, encodingOrOffset || 0, length === undefined ? value.byteLength - (encodingOrOffset || 0) : length);
      if (value !== null && typeof value === "object" && value.type === "Buffer" && Array.isArray(value.data)) value = value.data;
      if (value !== null && typeof value === "object" && typeof value.length === "number") {
        var buf = new Buffer(value.length);
        for (var i = 0; i < value.length; i++) buf[i] = Number(value[i]) & 0xff;
        return buf;
      }
      throw new TypeError("Buffer.from: expected a string, an array, an array-like or an ArrayBuffer");
    }

    static alloc(size, fill) {
      var buf = new Buffer(size);
      if (fill !== undefined) buf.fill(typeof fill === "string" ? fill.charCodeAt(0) & 0xff : fill);
      return buf;
    }

    static isBuffer(x) {
      return x instanceof Buffer;
    }

    static byteLength(str, encoding) {
      return typeof str === "string" ? encodeString(str, encoding).length : str.byteLength;
    }

    static concat(list, totalLength) {
      var total = 0;
      for (var i = 0; i < list.length; i++) total += list[i].length;
      if (totalLength !== undefined) total = totalLength;
      var out = Buffer.alloc(total);
      var pos = 0;
      for (var j = 0; j < list.length && pos < total; j++) {
        var part = list[j].length > total - pos ? list[j].subarray(0, total - pos) : list[j];
        out.set(part, pos);
        pos += part.length;
      }
      return out;
    }

    toString(encoding, start, end) {
      var s = start === undefined ? 0 : Math.max(0, start | 0);
      var e = end === undefined ? this.length : Math.min(this.length, end | 0);
      if (e <= s) return "";
      switch (normEncoding(encoding)) {
        case "utf8": return utf8Decode(this, s, e);
        case "hex": {
          var h = "";
          for (var i = s; i < e; i++) h += HEX[this[i] >> 4] + HEX[this[i] & 15];
          return h;
        }
        case "base64": return base64Encode(this, s, e, false);
        case "base64url": return base64Encode(this, s, e, true);
        case "ascii": {
          var a = "";
          for (var k = s; k < e; k++) a += String.fromCharCode(this[k] & 0x7f);
          return a;
        }
        default: {
          var l = "";
          for (var m = s; m < e; m++) l += String.fromCharCode(this[m]);
          return l;
        }
      }
    }

    toJSON() {
      return { type: "Buffer", data: Array.from(this) };
    }

    equals(other) {
      if (this.length !== other.length) return false;
      for (var i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
      return true;
    }

    slice(start, end) {
      return this.subarray(start, end);
    }
  }

  // read*/write* through a DataView: it bounds-checks and throws a RangeError.
  function view(buf) {
    return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  var ACCESSORS = [
    ["UInt8", "Uint8", 1], ["Int8", "Int8", 1],
    ["UInt16", "Uint16", 2], ["Int16", "Int16", 2],
    ["UInt32", "Uint32", 4], ["Int32", "Int32", 4],
    ["Float", "Float32", 4], ["Double", "Float64", 8],
    ["BigUInt64", "BigUint64", 8], ["BigInt64", "BigInt64", 8],
  ];
  ACCESSORS.forEach(function (a) {
    var name = a[0], dv = a[1], size = a[2];
    var orders = size === 1 ? [["", false]] : [["BE", false], ["LE", true]];
    orders.forEach(function (o) {
      var get = DataView.prototype["get" + dv];
      var set = DataView.prototype["set" + dv];
      var read = function (offset) {
        return get.call(view(this), offset === undefined ? 0 : offset, o[1]);
      };
      var write = function (value, offset) {
        var at = offset === undefined ? 0 : offset;
        set.call(view(this), at, value, o[1]);
        return at + size;
      };
      var names = [name + o[0]];
      if (name.indexOf("UInt") >= 0) names.push(name.replace("UInt", "Uint") + o[0]);
      names.forEach(function (n) {
        Object.defineProperty(Buffer.prototype, "read" + n, { value: read, writable: true, configurable: true });
        Object.defineProperty(Buffer.prototype, "write" + n, { value: write, writable: true, configurable: true });
      });
    });
  });

  Object.defineProperty(globalThis, "Buffer", { value: Buffer, writable: true, configurable: true });
})();

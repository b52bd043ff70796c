// GPS tracker written in the style of a ChirpStack v4 codec: modern syntax,
// `const` entry points, and `{ data }` without warnings or errors.
//
// Uplink, any FPort (11 bytes):
//   0    flags: bit 0 = GPS fix, bit 1 = moving
//   1-4  latitude,  int32 big-endian, 1e-7 degrees
//   5-8  longitude, int32 big-endian, 1e-7 degrees
//   9-10 altitude,  int16 big-endian, metres
// A payload without a fix is 1 byte (the flags) and decodes to no position.

const int32 = (b, i) => (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
const int16 = (b, i) => {
  const v = (b[i] << 8) | b[i + 1];
  return v & 0x8000 ? v - 0x10000 : v;
};

const decodeUplink = ({ bytes }) => {
  if (bytes.length < 1) {
    throw new Error("empty payload");
  }
  const flags = bytes[0];
  const data = { fix: (flags & 1) === 1, moving: (flags & 2) === 2 };
  if (data.fix) {
    if (bytes.length < 11) {
      throw new RangeError(`a fix needs 11 bytes, got ${bytes.length}`);
    }
    data.location = {
      latitude: int32(bytes, 1) / 1e7,
      longitude: int32(bytes, 5) / 1e7,
      altitude: int16(bytes, 9),
    };
  }
  return { data };
};

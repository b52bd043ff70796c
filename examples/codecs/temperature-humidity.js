// Temperature / humidity sensor: a payload formatter for Lorikeet, ChirpStack v4
// and The Things Stack (the same decodeUplink / encodeDownlink API).
//
// Uplink, FPort 1 (5 bytes):
//   0-1  temperature, int16 big-endian, 0.01 °C
//   2    relative humidity, uint8, 0.5 %
//   3-4  battery, uint16 big-endian, millivolts
// Downlink, FPort 2: 0x01 followed by the reporting interval in minutes (uint16).
//
// Device variables: `temperatureOffset` (°C, optional) is added to every reading.

function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 1) {
    return { errors: ["unexpected fPort " + input.fPort] };
  }
  if (b.length !== 5) {
    return { errors: ["expected 5 bytes, got " + b.length] };
  }

  var raw = (b[0] << 8) | b[1];
  if (raw & 0x8000) {
    raw -= 0x10000; // sign-extend the int16
  }
  var offset = parseFloat(input.variables.temperatureOffset || "0");
  var batteryMv = (b[3] << 8) | b[4];

  var warnings = [];
  if (batteryMv < 3000) {
    warnings.push("battery low: " + batteryMv + " mV");
  }

  return {
    data: {
      temperature: Math.round((raw / 100 + offset) * 100) / 100,
      humidity: b[2] / 2,
      batteryMv: batteryMv,
      receivedAt: input.recvTime
    },
    warnings: warnings
  };
}

function encodeDownlink(input) {
  var minutes = input.data.intervalMinutes;
  if (typeof minutes !== "number" || minutes % 1 !== 0 || minutes < 1 || minutes > 1440) {
    return { errors: ["intervalMinutes must be an integer 1..1440"] };
  }
  return {
    bytes: [0x01, (minutes >> 8) & 0xff, minutes & 0xff],
    fPort: 2
  };
}

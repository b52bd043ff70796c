//! LoRaWAN regional parameters: one module per band plan behind a `Region` trait. (Being built: issue 3.)

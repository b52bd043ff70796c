//! The JavaScript codec runner with arbitrary payloads and queued objects: see
//! `lorikeet_codec::fuzzing::js_codec`. One engine per thread keeps the script
//! compiled between runs, as the server's workers do.
#![no_main]

use std::cell::RefCell;

use lorikeet_codec::{fuzzing, JsEngine};

thread_local! {
    static ENGINE: RefCell<JsEngine> = RefCell::new(fuzzing::js_engine());
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ENGINE.with(|engine| {
        fuzzing::js_codec(&mut engine.borrow_mut(), data);
    });
});

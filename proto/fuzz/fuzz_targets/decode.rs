//! Any bytes, read as a stream of frames the way a transport reads a
//! socket: decoding must return an error, never panic, and whatever it
//! accepts must re-encode to the same header bytes.
#![no_main]

use lego_proto::frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match frame::decode(rest) {
            Ok((header, payload, used)) => {
                assert_eq!(payload.len(), header.length as usize);
                assert_eq!(&header.encode()[..], &rest[..frame::HEADER_LEN]);
                if header.kind == frame::Kind::Error {
                    let _ = frame::decode_error(payload);
                }
                rest = &rest[used..];
            }
            Err(e) => {
                // Every error can be shown to a user.
                let _ = format!("{e}");
                break;
            }
        }
    }
});

//! The framer fed arbitrary bytes in arbitrary chunks, with small limits: the events must not
//! depend on how the input was chunked, commands stay within the limits, and the framer never
//! holds more than one partial line plus one chunk plus the command.

#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_proto::{FrameEvent, Framer, FramingLimits};

const LIMITS: FramingLimits = FramingLimits {
    max_line: 64,
    max_literal: 100,
    max_command: 300,
    max_literals: 3,
    max_text: 200,
    max_skip_literal: 1000,
};

/// Runs the framer over `input` split at the given chunk size; returns the events.
fn events(input: &[u8], chunk: usize) -> Vec<FrameEvent> {
    let mut framer = Framer::new(LIMITS);
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        framer.push(piece);
        while let Some(event) = framer.next() {
            if let FrameEvent::Command(c) = &event {
                assert!(c.len() <= LIMITS.max_command, "command of {} bytes", c.len());
            }
            out.push(event);
        }
        let bound = LIMITS.max_command + LIMITS.max_line + 2 + chunk;
        assert!(framer.buffered() <= bound * 2, "holds {} bytes", framer.buffered());
        framer.release_unused_memory();
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else { return };
    let chunk = usize::from(first % 31) + 1;
    let whole = events(input, input.len().max(1));
    let chunked = events(input, chunk);
    assert_eq!(whole, chunked, "chunk size {chunk} changed the events");
});

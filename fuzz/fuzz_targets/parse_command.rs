//! The command parser on arbitrary bytes: must return Ok or Err, never panic, and an error's
//! offset must lie within the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_proto::parse_command;

fuzz_target!(|data: &[u8]| {
    match parse_command(data) {
        Ok(command) => {
            // The command name is always one of the known ones.
            assert!(!command.body.name().is_empty());
        }
        Err(e) => assert!(e.offset <= data.len(), "offset {} past {} bytes", e.offset, data.len()),
    }
});

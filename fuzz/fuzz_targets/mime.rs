//! MIME parsing on arbitrary bytes, then every section and BINARY extraction of every part the
//! summary lists (and a few that do not exist): no panics, and ranges stay inside the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_message::{BodyPart, PartKind, SectionText, binary, parse, section};

/// Part numbers of every node, depth-first, bounded so huge trees stay fast.
fn parts(node: &BodyPart, prefix: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
    if out.len() > 64 {
        return;
    }
    match &node.kind {
        PartKind::Multipart(children) => {
            for (i, child) in children.iter().enumerate() {
                prefix.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
                out.push(prefix.clone());
                parts(child, prefix, out);
                prefix.pop();
            }
        }
        // The parts of an encapsulated message continue its part number.
        PartKind::Message(nested) => parts(&nested.structure, prefix, out),
        PartKind::Leaf => {}
    }
}

fuzz_target!(|raw: &[u8]| {
    let summary = parse(raw);
    let mut all = vec![Vec::new(), vec![1], vec![2, 1], vec![99]];
    parts(&summary.structure, &mut Vec::new(), &mut all);
    let names = [b"subject".to_vec(), b"content-type".to_vec()];
    for part in &all {
        for text in [
            SectionText::Full,
            SectionText::Header,
            SectionText::HeaderFields(&names),
            SectionText::HeaderFieldsNot(&names),
            SectionText::Text,
            SectionText::Mime,
        ] {
            let _ = section(raw, &summary, part, text);
        }
        let _ = binary(raw, &summary, part);
    }
});

//! Prints what a statement file parses to: `cargo run -p fundtrail-importers --example dump FILE`.

use fundtrail_importers::{parse_auto, Options};

fn main() {
    for path in std::env::args().skip(1) {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        match parse_auto(file, Some(&path), &Options::default()) {
            Ok((format, records)) => {
                println!("== {path}: {format:?}");
                for r in records {
                    match r {
                        Ok(rec) => println!("{}", serde_json::to_string(&rec).unwrap_or_default()),
                        Err(e) => println!("ERROR {}: {e}", e.code.as_str()),
                    }
                }
            }
            Err(e) => println!("== {path}: {e}"),
        }
    }
}

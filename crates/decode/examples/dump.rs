//! Prints every event of an input as one flat JSON object per line, and errors as `ERROR ...`:
//! `cargo run -p dozor-decode --example dump -- FILE`.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump FILE");
        std::process::exit(2);
    };
    match dozor_decode::read_path(path.as_ref(), &dozor_decode::ReadOptions::default()) {
        Ok(events) => {
            for event in events {
                match event {
                    Ok(event) => println!("{}", event.to_json()),
                    Err(e) => println!("ERROR {e}"),
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

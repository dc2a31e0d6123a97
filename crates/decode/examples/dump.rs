fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let opts = dozor_decode::ReadOptions::default();
    match dozor_decode::read_path(path.as_ref(), &opts) {
        Ok(events) => for e in events { match e { Ok(e) => println!("{}", e.to_json()), Err(e) => println!("ERROR {e}") } },
        Err(e) => println!("FATAL {e}"),
    }
}
